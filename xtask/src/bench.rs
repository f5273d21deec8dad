//! `cargo xtask bench`: figures, not assertions. Every time is a median of
//! interleaved runs in this one invocation, shown next to its baseline.

use crate::{BARE, HOST, cargo, workspace};
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
    build(&["--release", "-p", "unikernel", "--example", "hello", "--example", "random", "--target", BARE])?;
    build(&[
        "--profile",
        "stripped",
        "-p",
        "unikernel",
        "--example",
        "hello",
        "--example",
        "random",
        "--target",
        BARE,
    ])?;
    build(&["--release", "-p", "floor", "--target", BARE])?;
    build(&["--profile", "stripped", "-p", "floor", "--target", BARE])?;
    build(&["--release", "-p", "unikernel", "--example", "hello", "--target", HOST])?;
    build(&["-p", "unikernel-runner", "--target", HOST])?;
    let target = workspace().join("target");
    let bare = |profile: &str, path: &str| target.join(BARE).join(profile).join(path);
    let runner = target.join(HOST).join("debug/unikernel-runner");
    let (hello, floor) = (bare("release", "examples/hello"), bare("release", "floor"));

    println!("## Image size (x86_64-unknown-none, release: opt-level s, LTO)\n");
    println!("| image | ELF | stripped | loaded into RAM |\n|---|---:|---:|---:|");
    for (name, path) in [("hello", "examples/hello"), ("random (entropy)", "examples/random"), ("floor", "floor")] {
        let stripped = bare("stripped", path);
        println!(
            "| {name} | {} B | {} B | {} B |",
            size(&bare("release", path))?,
            size(&stripped)?,
            loaded(&stripped)?
        );
    }

    let mut accels = vec!["tcg"];
    if kvm_works(&runner, &floor) {
        accels.push("kvm");
    }
    println!("\n## QEMU start → exit, runner defaults (-M microvm, 64M), median of {runs} interleaved runs\n");
    println!("| accel | floor kernel | hello | hello / floor |\n|---|---:|---:|---:|");
    for accel in &accels {
        let mut floor_cmd = qemu_command(&runner, &floor, accel, &[])?;
        let mut hello_cmd = qemu_command(&runner, &hello, accel, &[])?;
        let (mut f, mut h) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            f.push(time(&mut floor_cmd, 3)?.0);
            h.push(time(&mut hello_cmd, 3)?.0);
        }
        let (f, h) = (median(f), median(h));
        println!("| {} | {} | {} | {:.2} |", accel.to_uppercase(), ms(f), ms(h), h.as_secs_f64() / f.as_secs_f64());
    }

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
    })
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
    build(&["--release", "-p", "unikernel", "--example", "bench_runtime", "--example", "idle", "--target", BARE])?;
    build(&["--release", "-p", "unikernel", "--example", "bench_runtime", "--example", "idle", "--target", HOST])?;
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
