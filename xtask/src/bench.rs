//! `cargo xtask bench`: figures, not assertions. Every time is a median of
//! interleaved runs in this one invocation, shown next to its baseline; the
//! last table is the smallest guest memory each example works with.

mod memory;

use crate::{AARCH64, BARE, HOST, cargo, workspace};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DEFAULT_RUNS: usize = 30;

fn build(args: &[&str]) -> Result<(), String> {
    let status = cargo().args(["build", "--quiet"]).args(args).status().map_err(|e| e.to_string())?;
    if status.success() { Ok(()) } else { Err(format!("cargo build {args:?} failed")) }
}

fn size(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path).map(|m| m.len()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Bytes QEMU loads into guest memory: the file contents of the loadable
/// segments, without the page-alignment padding the file carries.
fn loaded(path: &Path) -> Result<u64, String> {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let elf = ElfFile64::<object::Endianness>::parse(&*data).map_err(|e| e.to_string())?;
    let endian = elf.endian();
    Ok(elf
        .elf_program_headers()
        .iter()
        .filter(|h| h.p_type(endian) == object::elf::PT_LOAD)
        .map(|h| h.p_filesz(endian))
        .sum())
}

/// The QEMU command the runner would use for `image` under `accel`.
fn qemu_command(runner: &Path, image: &Path, accel: &str, extra: &[&str]) -> Result<Command, String> {
    let out = Command::new(runner)
        .arg(image)
        .args(["--print-command", "--accel", accel])
        .args(extra)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("runner --print-command: {}", String::from_utf8_lossy(&out.stderr)));
    }
    // The runner quotes only arguments with spaces; these have none.
    let line = String::from_utf8_lossy(&out.stdout);
    let mut words = line.split_whitespace();
    let mut cmd = Command::new(words.next().ok_or("empty QEMU command")?);
    cmd.args(words);
    Ok(cmd)
}

/// Wall time of one run; fails unless the guest exited with status 0
/// (QEMU status 3 in the runner's encoding) or, for a host program, 0.
fn time(cmd: &mut Command, ok_status: i32) -> Result<(Duration, String), String> {
    let start = Instant::now();
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::null()).output().map_err(|e| e.to_string())?;
    let elapsed = start.elapsed();
    match out.status.code() {
        Some(c) if c == ok_status => Ok((elapsed, String::from_utf8_lossy(&out.stdout).into_owned())),
        other => Err(format!("{cmd:?} exited with {other:?}")),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Host TSC ticks per second. Under TCG the guest's RDTSC reads the host's
/// TSC; under KVM it runs at the host's rate too.
fn tsc_hz() -> f64 {
    // SAFETY: RDTSC has no side effects and exists on every x86_64 CPU.
    let (t0, c0) = (Instant::now(), unsafe { core::arch::x86_64::_rdtsc() });
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: as above.
    let c1 = unsafe { core::arch::x86_64::_rdtsc() };
    (c1 - c0) as f64 / t0.elapsed().as_secs_f64()
}

fn boot_cycles(stdout: &str) -> Option<u64> {
    stdout.lines().find_map(|l| l.split("boot: ").nth(1)?.split(' ').next()?.parse().ok())
}

fn kvm_works(runner: &Path, floor: &Path) -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
        && qemu_command(runner, floor, "kvm", &[]).and_then(|mut c| time(&mut c, 3)).is_ok()
}

pub fn run(runs: Option<Result<usize, String>>) -> Result<(), String> {
    let runs = runs.transpose()?.unwrap_or(DEFAULT_RUNS).max(3);
    build(&["--release", "-p", "unikernel-rt", "--example", "hello", "--example", "random", "--target", BARE])?;
    build(&[
        "--profile",
        "stripped",
        "-p",
        "unikernel-rt",
        "--example",
        "hello",
        "--example",
        "random",
        "--target",
        BARE,
    ])?;
    build(&["--release", "-p", "floor", "--target", BARE])?;
    build(&["--profile", "stripped", "-p", "floor", "--target", BARE])?;
    build(&["--release", "-p", "unikernel-rt", "--example", "hello", "--target", HOST])?;
    build(&["-p", "unikernel-runner", "--target", HOST])?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from);
    let bare = |profile: &str, path: &str| target.join(BARE).join(profile).join(path);
    let runner = target.join(HOST).join("debug/unikernel-runner");
    let (hello, floor) = (bare("release", "examples/hello"), bare("release", "floor"));

    sizes(BARE, &|profile, path| bare(profile, path), &[("random (entropy)", "examples/random")])?;

    let mut accels = vec!["tcg"];
    if kvm_works(&runner, &floor) {
        accels.push("kvm");
    }
    println!("\n## QEMU start → exit, runner defaults (-M microvm, 64M), median of {runs} interleaved runs\n");
    start_to_exit(&runner, (&floor, &hello), &accels, runs, 3)?;

    let hz = tsc_hz();
    println!("\n## Guest: first instruction → main (TSC, host rate {:.2} GHz), median of {runs}\n", hz / 1e9);
    println!("| accel | cycles | time |\n|---|---:|---:|");
    for accel in &accels {
        let mut cmd = qemu_command(&runner, &hello, accel, &["log=debug"])?;
        let mut cycles = Vec::new();
        for _ in 0..runs {
            let (_, out) = time(&mut cmd, 3)?;
            cycles.push(boot_cycles(&out).ok_or("hello printed no boot cycles with log=debug")?);
        }
        cycles.sort_unstable();
        let c = cycles[cycles.len() / 2];
        println!("| {} | {c} | {:.3} ms |", accel.to_uppercase(), c as f64 / hz * 1e3);
    }

    let hosted: PathBuf = target.join(HOST).join("release/examples/hello");
    let mut cmd = Command::new(&hosted);
    let t = median((0..runs).map(|_| time(&mut cmd, 0).map(|r| r.0)).collect::<Result<_, _>>()?);
    println!("\n## Hosted target: the same hello as a Linux process, start → exit, median of {runs}\n\n{}", ms(t));

    runtime(&runner, &accels, &|name| bare("release", &format!("examples/{name}")), &|name| {
        target.join(HOST).join("release/examples").join(name)
    })?;
    first_answer(&runner, &bare("release", "examples/http"))?;
    aarch64(&runner, &target, runs)?;
    build(&["--release", "-p", "unikernel-rt", "--examples", "--target", BARE])?;
    memory::table(&runner, &|name| bare("release", &format!("examples/{name}")))
}

/// The size table of `hello`, `extra` and the floor kernel for `target`;
/// `image(profile, path)` is where a build of it is.
fn sizes(target: &str, image: &dyn Fn(&str, &str) -> PathBuf, extra: &[(&str, &str)]) -> Result<(), String> {
    println!("## Image size ({target}, release: opt-level s, LTO)\n");
    println!("| image | ELF | stripped | loaded into RAM |\n|---|---:|---:|---:|");
    let all = [("hello", "examples/hello")].iter().chain(extra).chain(&[("floor", "floor")]);
    for (name, path) in all {
        let stripped = image("stripped", path);
        println!(
            "| {name} | {} B | {} B | {} B |",
            size(&image("release", path))?,
            size(&stripped)?,
            loaded(&stripped)?
        );
    }
    Ok(())
}

/// Median QEMU start → exit of the floor kernel and hello, interleaved,
/// per accelerator; `ok_status` is QEMU's status for a guest exiting 0.
fn start_to_exit(
    runner: &Path,
    (floor, hello): (&Path, &Path),
    accels: &[&str],
    runs: usize,
    ok_status: i32,
) -> Result<(), String> {
    println!("| accel | floor kernel | hello | hello / floor |\n|---|---:|---:|---:|");
    for accel in accels {
        let mut floor_cmd = qemu_command(runner, floor, accel, &[])?;
        let mut hello_cmd = qemu_command(runner, hello, accel, &[])?;
        let (mut f, mut h) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            f.push(time(&mut floor_cmd, ok_status)?.0);
            h.push(time(&mut hello_cmd, ok_status)?.0);
        }
        let (f, h) = (median(f), median(h));
        println!("| {} | {} | {} | {:.2} |", accel.to_uppercase(), ms(f), ms(h), h.as_secs_f64() / f.as_secs_f64());
    }
    Ok(())
}

/// `cargo xtask bench-aarch64 [RUNS]`: only the aarch64 tables of `bench`.
pub fn run_aarch64(runs: Option<Result<usize, String>>) -> Result<(), String> {
    let runs = runs.transpose()?.unwrap_or(DEFAULT_RUNS).max(3);
    build(&["-p", "unikernel-runner", "--target", HOST])?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from);
    aarch64(&target.join(HOST).join("debug/unikernel-runner"), &target, runs)
}

/// aarch64 on QEMU's `virt` (TCG: foreign to this host): sizes and start →
/// exit next to its own floor kernel. No exit device there: a guest that
/// exits 0 ends QEMU with 0.
fn aarch64(runner: &Path, target: &Path, runs: usize) -> Result<(), String> {
    let examples = ["--example", "hello", "--example", "random", "--example", "http", "--example", "kv"];
    for profile in ["release", "stripped"] {
        build(
            &["--profile", profile, "-p", "unikernel-rt", "--target", AARCH64]
                .iter()
                .chain(&examples)
                .copied()
                .collect::<Vec<_>>(),
        )?;
        build(&["--profile", profile, "-p", "floor", "--target", AARCH64])?;
    }
    let image = |profile: &str, path: &str| target.join(AARCH64).join(profile).join(path);
    println!();
    sizes(
        AARCH64,
        &image,
        &[("random (entropy)", "examples/random"), ("http", "examples/http"), ("kv", "examples/kv")],
    )?;
    println!("\n## aarch64: QEMU start → exit on virt (TCG), median of {runs} interleaved runs\n");
    start_to_exit(runner, (&image("release", "floor"), &image("release", "examples/hello")), &["tcg"], runs, 0)
}

/// Host CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    let fields: Vec<&str> = stat.rsplit_once(')').ok_or("stat format")?.1.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().map_err(|e| e.to_string())? + fields[12].parse::<u64>().map_err(|e| e.to_string())?;
    Ok(ticks as f64 / 100.0) // USER_HZ
}

/// Percent of one host core `cmd` uses from 1 s to 3 s into its run (it
/// sleeps for 4 s), then waits for it to exit with `ok_status`.
fn idle_cpu_percent(cmd: &mut Command, ok_status: i32) -> Result<f64, String> {
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(1));
    let before = cpu_seconds(child.id())?;
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_seconds(child.id())? - before;
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.code() != Some(ok_status) {
        return Err(format!("{cmd:?} exited with {status}"));
    }
    Ok(used / 2.0 * 100.0)
}

fn runtime_figures(stdout: &str) -> Result<String, String> {
    let line = stdout.lines().find_map(|l| l.strip_prefix("bench: ")).ok_or("bench_runtime printed no figures")?;
    let value = |key: &str| {
        line.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')).unwrap_or("?").to_string()
    };
    Ok(format!("{} | {} | {}", value("spawn_join_ns"), value("wake_median_us"), value("wake_p99_us")))
}

/// The async runtime, guest next to hosted: spawn+join cost, how late a
/// 1 ms sleep wakes, and host CPU use while sleeping.
fn runtime(
    runner: &Path,
    accels: &[&str],
    bare: &dyn Fn(&str) -> PathBuf,
    hosted: &dyn Fn(&str) -> PathBuf,
) -> Result<(), String> {
    build(&["--release", "-p", "unikernel-rt", "--example", "bench_runtime", "--example", "idle", "--target", BARE])?;
    build(&["--release", "-p", "unikernel-rt", "--example", "bench_runtime", "--example", "idle", "--target", HOST])?;
    println!(
        "\n## Async runtime (release): 10,000 tasks spawned and joined; 200 × sleep(1 ms); an idle guest sleeping\n"
    );
    println!(
        "| where | spawn+join ns/task | wake-up late, median µs | p99 µs | idle host CPU % |\n|---|---:|---:|---:|---:|"
    );
    for accel in accels {
        let (_, out) = time(&mut qemu_command(runner, &bare("bench_runtime"), accel, &[])?, 3)?;
        let idle = idle_cpu_percent(&mut qemu_command(runner, &bare("idle"), accel, &["seconds=4"])?, 3)?;
        println!("| guest, {} | {} | {idle:.1} |", accel.to_uppercase(), runtime_figures(&out)?);
    }
    let (_, out) = time(&mut Command::new(hosted("bench_runtime")), 0)?;
    let idle = idle_cpu_percent(Command::new(hosted("idle")).arg("seconds=4"), 0)?;
    println!("| hosted (Linux process) | {} | {idle:.1} |", runtime_figures(&out)?);
    Ok(())
}

/// A port nothing listens on now.
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Times of one boot of `http` with a client that connects from the start,
/// every millisecond until accepted, as a script waiting for a server does:
/// when the guest printed that it listens, when stderr (the runner's) said
/// `listening on`, and when the first `200 OK` came back, from QEMU's start.
struct FirstAnswer {
    listening: Duration,
    ready: Option<Duration>,
    answered: Duration,
}

fn first_answer_once(mut cmd: Command, port: u16) -> Result<FirstAnswer, String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
    let seen = |from: Box<dyn Read + Send>, needle: &'static str| {
        std::thread::spawn(move || {
            BufReader::new(from).lines().map_while(Result::ok).find(|l| l.contains(needle)).map(|_| start.elapsed())
        })
    };
    let listening = seen(Box::new(child.stdout.take().ok_or("stdout")?), "net: listening on TCP port 80");
    let ready = seen(Box::new(child.stderr.take().ok_or("stderr")?), "unikernel-runner: listening on");
    let answered = loop {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            return Err("http did not answer within 60 s".into());
        }
        let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        let mut reply = [0; 12];
        let sent = conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if sent.is_ok() && conn.read_exact(&mut reply).is_ok() && &reply == b"HTTP/1.1 200" {
            break start.elapsed();
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let listening = listening.join().map_err(|_| "reader")?.ok_or("http never listened")?;
    Ok(FirstAnswer { listening, ready: ready.join().map_err(|_| "reader")?, answered })
}

/// Boot to first answer through user networking, with the runner (host port
/// opened when the guest listens) next to its printed QEMU command, whose
/// forward is open from QEMU's start, as the runner's was before.
fn first_answer(runner: &Path, http: &Path) -> Result<(), String> {
    const RUNS: usize = 10;
    build(&["--release", "-p", "unikernel-rt", "--example", "http", "--target", BARE])?;
    let (mut now, mut before) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let port = free_port()?;
        let mut cmd = Command::new(runner);
        cmd.arg(http).args(["--accel", "tcg", "--forward", &format!("{port}:80")]);
        now.push(first_answer_once(cmd, port)?);
        let port = free_port()?;
        // The printed command opens its forwards at QEMU's start.
        let forward = format!("{port}:80");
        before.push(first_answer_once(qemu_command(runner, http, "tcg", &["--forward", &forward])?, port)?);
    }
    let figure = |runs: &[FirstAnswer], f: &dyn Fn(&FirstAnswer) -> Option<Duration>| {
        let times: Option<Vec<Duration>> = runs.iter().map(f).collect();
        times.map_or("—".into(), |t| ms(median(t)))
    };
    println!(
        "\n## Boot to first HTTP answer, `http` release, TCG, user networking, median of {RUNS} interleaved runs\n"
    );
    println!(
        "From the start of the runner (of QEMU for the baseline), a client connects every 1 ms until accepted, then sends `GET /`.\n"
    );
    println!(
        "| forward | start → guest listens | start → runner's ready line | start → first 200 | guest listens → first 200 |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (name, runs) in [("opened when the guest listens (runner)", &now), ("open from QEMU's start (before)", &before)]
    {
        println!(
            "| {name} | {} | {} | {} | {} |",
            figure(runs, &|r| Some(r.listening)),
            figure(runs, &|r| r.ready),
            figure(runs, &|r| Some(r.answered)),
            figure(runs, &|r| r.answered.checked_sub(r.listening)),
        );
    }
    Ok(())
}
