//! `--on-demand`: the runner listens with no guest running, the first
//! connection boots the guest and is answered without a retry, an idle
//! guest stops (`--idle-exit`) and the next connection boots it again, and
//! `kv`'s acknowledged writes survive the stops and a SIGTERM; on a tap, the
//! runner reaches the guest at the address its listening line gives. Boots
//! are counted from the runner's log and QEMU processes from /proc.

mod common;

use common::guest::{Guest, free_port, run};
use common::netns::Namespace;

const LISTENING: &str = "unikernel-runner: on demand: listening on";
const BOOT: &str = "unikernel-runner: on demand: starting the guest";
const PAUSED: &str = "unikernel-runner: on demand: QEMU is up, the guest paused until a connection";
const IDLE_STOPPED: &str = "unikernel-runner: on demand: the guest stopped; the next connection starts it again";

/// Boots nothing yet: starts the runner on demand for `image` on `port`.
fn on_demand(image: &str, port: u16, guest_port: u16, args: &[&str]) -> Guest {
    let forward = format!("{port}:{guest_port}");
    let mut words = vec!["--on-demand", "--forward", &forward];
    words.extend(args);
    let mut guest = Guest::start(&[], image, &words);
    guest.wait_for_stderr(LISTENING);
    guest
}

/// The QEMU processes whose parent is process `pid`.
fn qemu_pids(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces, not `)`.
            let (comm, rest) = stat.rsplit_once(") ")?;
            let ppid = rest.split_whitespace().nth(1)?.parse::<u32>().ok()?;
            (comm.contains("(qemu-system") && ppid == pid).then(|| path.file_name()?.to_str()?.parse().ok())?
        })
        .collect()
}

fn qemu_children(pid: u32) -> usize {
    qemu_pids(pid).len()
}

/// `curl` with no retry: the status code and the body.
fn curl(args: &[&str]) -> (String, String) {
    let marker = "\n--status ";
    let write_out = format!("{marker}%{{http_code}}");
    let mut words = vec!["-s", "--max-time", "120", "-w", &write_out];
    words.extend(args);
    let out = run("curl", &words);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once(marker).unwrap_or((&text, "none"));
    (status.to_string(), body.to_string())
}

fn get(port: u16, path: &str) -> (String, String) {
    curl(&[&format!("http://127.0.0.1:{port}{path}")])
}

fn boots(guest: &Guest) -> usize {
    guest.stderr().matches(BOOT).count()
}

#[test]
fn no_guest_runs_until_the_first_connection_which_is_answered() {
    let port = free_port();
    let guest = on_demand("http", port, 80, &[]);
    assert_eq!(qemu_children(guest.pid()), 0, "a QEMU before any connection");
    assert_eq!(boots(&guest), 0, "{}", guest.stderr());
    let (status, body) = get(port, "/");
    assert_eq!(status, "200", "{body}\n{}", guest.stderr());
    assert!(body.contains("Hello from a unikernel"), "{body}");
    assert_eq!(qemu_children(guest.pid()), 1, "the guest runs once it served");
    assert_eq!(boots(&guest), 1, "{}", guest.stderr());
    let (status, _) = get(port, "/");
    assert_eq!((status.as_str(), boots(&guest)), ("200", 1), "a running guest serves without booting again");
}

/// The one QEMU child of process `pid`, which must not be one of `old`.
fn new_qemu(pid: u32, old: &[u32]) -> u32 {
    match qemu_pids(pid)[..] {
        [one] if !old.contains(&one) => one,
        ref other => panic!("not one new QEMU under {pid}: {other:?}, before {old:?}"),
    }
}

/// The CPU time of process `pid`'s busiest thread besides its main one,
/// in ns (schedstat's first field): the vCPU's, once a guest ran.
fn busiest_thread_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the QEMU process");
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let tid: u32 = task.file_name().to_str()?.parse().ok()?;
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            (tid != pid).then(|| schedstat.split_whitespace().next()?.parse().ok())?
        })
        .max()
        .expect("QEMU's threads")
}

#[test]
fn a_warm_qemu_waits_paused_serves_one_life_and_the_next_waits_after_an_idle_stop() {
    let port = free_port();
    let mut guest = on_demand("http", port, 80, &["--warm", "--idle-exit", "1"]);
    let mut qemus = Vec::new();
    for round in 1..=2 {
        wait_for_count(&mut guest, PAUSED, round);
        let waiting = new_qemu(guest.pid(), &qemus);
        // Paused: no thread of it runs the guest. A guest let run would
        // have booted in this second; under TCG its vCPU thread spends
        // ~20 ms of CPU on that, a paused one well under 1 ms.
        std::thread::sleep(std::time::Duration::from_secs(1));
        let busiest = busiest_thread_ns(waiting);
        assert!(busiest < 5_000_000, "round {round}: a thread of the waiting QEMU ran {busiest} ns");
        assert_eq!(guest.stderr().matches("the guest listens behind port").count(), round - 1, "{}", guest.stderr());
        let (status, body) = get(port, "/");
        assert_eq!(status, "200", "round {round}: {body}\n{}", guest.stderr());
        assert!(body.contains("Hello from a unikernel"), "{body}");
        assert_eq!(qemu_pids(guest.pid()), [waiting], "the waiting QEMU served");
        assert_eq!(boots(&guest), round, "{}", guest.stderr());
        qemus.push(waiting);
        wait_for_count(&mut guest, IDLE_STOPPED, round);
    }
    // Each QEMU served one life: the third waits already, a new process.
    wait_for_count(&mut guest, PAUSED, 3);
    let waiting = new_qemu(guest.pid(), &qemus);
    assert_eq!(boots(&guest), 2, "{}", guest.stderr());
    // A stop signal to the runner alone ends the waiting QEMU too.
    run("kill", &["-INT", &guest.pid().to_string()]);
    let (_, stderr) = guest.wait();
    assert!(stderr.contains("stopped by signal 2 (SIGINT)"), "{stderr}");
    assert!(!std::path::Path::new(&format!("/proc/{waiting}")).exists(), "the waiting QEMU outlived the runner");
}

#[test]
fn a_waiting_qemu_that_dies_is_not_replaced_until_a_connection_which_boots_cold() {
    let port = free_port();
    let mut guest = on_demand("http", port, 80, &["--warm"]);
    guest.wait_for_stderr(PAUSED);
    run("kill", &["-KILL", &new_qemu(guest.pid(), &[]).to_string()]);
    let stderr = guest.wait_for_stderr("boot 1 ended (QEMU ended (signal: 9");
    assert!(stderr.contains("while the guest waited for a connection"), "{stderr}");
    // Not started again at once, which a QEMU failing at start would repeat.
    assert_eq!(qemu_children(guest.pid()), 0, "{stderr}");
    let (status, body) = get(port, "/");
    assert_eq!(status, "200", "{body}\n{}", guest.stderr());
    assert!(guest.stderr().contains("starting the guest (boot 2, 1 connection(s) held)"), "{}", guest.stderr());
}

#[test]
fn an_idle_guest_stops_and_the_next_connection_boots_it_again() {
    let port = free_port();
    let mut guest = on_demand("http", port, 80, &["--idle-exit", "1"]);
    for round in 1..=2 {
        let (status, body) = get(port, "/");
        assert_eq!(status, "200", "round {round}: {body}\n{}", guest.stderr());
        assert_eq!(boots(&guest), round, "{}", guest.stderr());
        let stderr = wait_for_count(&mut guest, IDLE_STOPPED, round);
        assert_eq!(qemu_children(guest.pid()), 0, "QEMU still runs after the idle stop\n{stderr}");
    }
}

#[test]
fn on_a_tap_the_runner_reaches_the_guest_at_its_own_address() {
    // Needs root: a namespace with a tap; the runner and curl run inside it.
    let ns = Namespace::new("ondemand");
    let port = free_port().to_string();
    let forward = format!("{port}:80");
    let args = ["--on-demand", "--idle-exit", "1", "--tap", "tap0", "--forward", &forward, "ip=10.10.0.2/24"];
    let mut guest = Guest::start(&ns.exec(), "http", &args);
    guest.wait_for_stderr(LISTENING);
    let url = format!("http://127.0.0.1:{port}/");
    for round in 1..=2 {
        let out = ns.run("curl", &["-s", "--max-time", "120", "-o", "/dev/null", "-w", "%{http_code}", &url]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "round {round}\n{}", guest.stderr());
        assert!(guest.wait_for("net: listening on TCP port 80 at 10.10.0.2").contains("at 10.10.0.2"));
        wait_for_count(&mut guest, IDLE_STOPPED, round);
    }
    assert_eq!(boots(&guest), 2, "{}", guest.stderr());
}

/// Waits until the runner has printed `line` `count` times (for 120 s at most).
fn wait_for_count(guest: &mut Guest, line: &str, count: usize) -> String {
    for _ in 0..2400 {
        let stderr = guest.wait_for_stderr(line);
        if stderr.matches(line).count() >= count {
            return stderr;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{line:?} not {count} times in 120 s:\n{}", guest.stderr());
}

#[test]
fn concurrent_first_connections_are_all_answered_by_one_boot() {
    let port = free_port();
    let guest = on_demand("http", port, 80, &[]);
    let clients: Vec<_> = (0..16).map(|_| std::thread::spawn(move || get(port, "/"))).collect();
    for client in clients {
        let (status, body) = client.join().unwrap();
        assert_eq!(status, "200", "{body}\n{}", guest.stderr());
    }
    assert_eq!(boots(&guest), 1, "{}", guest.stderr());
}

#[test]
fn a_guest_that_never_listens_is_stopped_at_the_deadline_and_the_next_connection_tries_again() {
    let port = free_port();
    // The guest listens on port 80 only: the forward to 81 never opens.
    let mut guest = on_demand("http", port, 81, &["--boot-deadline", "2"]);
    for attempt in 1..=2 {
        let (status, _) = get(port, "/");
        assert_eq!(status, "000", "attempt {attempt}: the held connection is closed without an answer");
        let stderr =
            wait_for_count(&mut guest, "held connection(s); the next connection starts the guest again", attempt);
        assert!(stderr.contains("the guest did not listen within 2s: stopping it"), "{stderr}");
        assert_eq!(boots(&guest), attempt, "{stderr}");
    }
}

fn put(port: u16, key: &str, value: &str) -> bool {
    let url = format!("http://127.0.0.1:{port}/kv/{key}");
    curl(&["-X", "PUT", "--data-binary", value, &url]) == ("200".into(), "stored\n".into())
}

#[test]
fn acknowledged_kv_writes_survive_idle_stops_and_a_sigterm() {
    let disk = std::env::temp_dir().join(format!("unikernel-on-demand-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&disk);
    let disk_arg = disk.display().to_string();
    let args = ["--idle-exit", "1", "--disk", &disk_arg, "format"];
    let port = free_port();
    let mut guest = on_demand("kv", port, 80, &args);
    let mut acknowledged = Vec::new();
    // Two guest lifetimes, each stopped when idle.
    for round in 1..=2 {
        for i in 0..5 {
            let key = format!("r{round}-{i}");
            assert!(put(port, &key, &format!("value of {key}")), "PUT {key}\n{}", guest.stderr());
            acknowledged.push(key);
        }
        wait_for_count(&mut guest, IDLE_STOPPED, round);
    }
    // SIGTERM to the runner while writes go on: those answered must stay.
    let pid = guest.pid().to_string();
    let writer = std::thread::spawn(move || {
        let mut written = Vec::new();
        for i in 0.. {
            let key = format!("term-{i}");
            if i == 5 {
                run("kill", &["-TERM", &pid]);
            }
            if !put(port, &key, &format!("value of {key}")) {
                assert!(i >= 5, "PUT {key} failed before the SIGTERM");
                return written;
            }
            written.push(key);
        }
        unreachable!()
    });
    acknowledged.extend(writer.join().unwrap());
    let (_, stderr) = guest.wait();
    assert!(stderr.contains("stopped by signal 15 (SIGTERM)"), "{stderr}");
    assert!(acknowledged.len() >= 15, "{acknowledged:?}");

    let guest = on_demand("kv", port, 80, &args);
    for key in &acknowledged {
        let (status, body) = get(port, &format!("/kv/{key}"));
        assert_eq!((status.as_str(), body.as_str()), ("200", format!("value of {key}").as_str()), "{}", guest.stderr());
    }
    drop(guest);
    let _ = std::fs::remove_file(disk);
}

#[test]
fn what_on_demand_cannot_serve_is_refused_before_it_listens() {
    let refused = |image: &str, args: &[&str], why: &str| {
        let mut words = vec!["--on-demand"];
        words.extend(args);
        let run = common::boot_example(image, &words);
        assert_eq!(run.status, 2, "{image} {args:?}: {}", run.stderr);
        assert!(run.stderr.contains(why), "{image} {args:?}: {}", run.stderr);
        assert!(!run.stderr.contains(LISTENING), "{}", run.stderr);
    };
    refused("hello", &[], "has no network device to wake it");
    refused("echo", &["--forward", "udp:7007:7"], "--on-demand forwards TCP only: drop udp:7007:7");
    refused("http", &["--gdb"], "drop --gdb and --profile");
    refused("http", &["--warm", "--tap", "tap0"], "--warm lets the paused guest run through QEMU's monitor");
    let port = free_port();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    refused("http", &["--forward", &format!("{port}:80")], &format!("cannot listen on 127.0.0.1:{port}"));
}
