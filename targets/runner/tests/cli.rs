//! The runner as a command-line program: the stop signals it forwards to
//! QEMU, QEMU never outliving it, QEMU stopped from outside, and a second
//! instance asking for a host port the first one holds.

mod common;

use common::guest::free_port;
use common::{BARE, boot, examples};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Generous bound on anything a test waits for, so a broken runner fails
/// the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(120);

/// The runner booting the `http` example, in its own process group so that
/// dropping it cleans up a QEMU that outlived it.
struct Runner {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl Runner {
    fn start(port: u16) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_unikernel-runner"))
            .arg(examples(BARE).join("http"))
            .args(["--accel", "tcg", "--timeout", "300", "--forward", &format!("{port}:80")])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the runner");
        let stdout = Arc::new(Mutex::new(String::new()));
        let (out, sink) = (child.stdout.take().expect("piped"), stdout.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut err = child.stderr.take().expect("piped");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let runner = Self { child, stdout, stderr: Some(stderr) };
        runner.wait_serving();
        runner
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_serving(&self) {
        let start = Instant::now();
        while !self.stdout.lock().unwrap().contains("serving on") {
            assert!(start.elapsed() < PATIENCE, "the guest did not serve:\n{}", self.stdout.lock().unwrap());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The QEMU process the runner started.
    fn qemu(&self) -> u32 {
        let children = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| stat(pid).is_some_and(|(_, parent)| parent == self.pid()));
        let qemus: Vec<u32> = children.collect();
        assert_eq!(qemus.len(), 1, "the runner {} has one child, QEMU", self.pid());
        qemus[0]
    }

    /// Waits for the runner to end; its status and stderr. (Dropping the
    /// runner would kill whatever is left of its process group.)
    fn wait(&mut self) -> (ExitStatus, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < PATIENCE, "the runner did not stop");
            std::thread::sleep(Duration::from_millis(50));
        };
        (status, self.stderr.take().expect("waited once").join().unwrap())
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        signal("KILL", &format!("-{}", self.pid()));
        let _ = self.child.wait();
    }
}

/// The state letter and parent of process `pid`, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `PID (COMM) STATE PPID ...`; COMM may hold spaces and parentheses.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    Some((fields.next()?.chars().next()?, fields.next()?.parse().ok()?))
}

/// Whether `pid` still runs (a zombie has stopped).
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z')
}

fn signal(name: &str, target: &str) {
    let _ = Command::new("kill").args([&format!("-{name}"), "--", target]).status();
}

#[test]
fn a_stop_signal_reaches_qemu_and_the_runner_says_so() {
    for (name, number) in [("TERM", 15), ("INT", 2), ("HUP", 1)] {
        let mut runner = Runner::start(free_port());
        let qemu = runner.qemu();
        signal(name, &runner.pid().to_string());
        let (status, stderr) = runner.wait();
        assert_eq!(status.code(), Some(128 + number), "SIG{name}: {status}\n{stderr}");
        assert!(stderr.contains(&format!("unikernel-runner: stopped by signal {number}")), "SIG{name}: {stderr}");
        assert!(!stderr.contains("triple fault"), "SIG{name}: {stderr}");
        assert!(!alive(qemu), "SIG{name}: QEMU ({qemu}) outlived the runner");
    }
}

#[test]
fn qemu_dies_with_a_killed_runner() {
    let mut runner = Runner::start(free_port());
    let qemu = runner.qemu();
    signal("KILL", &runner.pid().to_string());
    let (status, _) = runner.wait();
    assert_eq!(status.signal(), Some(9));
    let start = Instant::now();
    while alive(qemu) {
        assert!(start.elapsed() < PATIENCE, "QEMU ({qemu}) outlived the killed runner");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn qemu_stopped_from_outside_is_a_signal_not_a_crash() {
    let mut runner = Runner::start(free_port());
    signal("TERM", &runner.qemu().to_string());
    let (status, stderr) = runner.wait();
    assert_eq!(status.code(), Some(128 + 15), "{stderr}");
    assert!(stderr.contains("unikernel-runner: QEMU was stopped by signal 15"), "{stderr}");
    assert!(!stderr.contains("triple fault"), "{stderr}");
}

#[test]
fn a_second_instance_on_a_taken_port_says_so_and_the_first_keeps_serving() {
    let port = free_port();
    let mut first = Runner::start(port);
    let second = boot(&examples(BARE).join("http"), &["--forward", &format!("{port}:80")]);
    assert_eq!(second.status, 2, "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!("host port {port} is already in use"))
            && second.stderr.contains("--forward HOST:GUEST"),
        "{}",
        second.stderr
    );
    assert!(!second.stderr.contains("Could not set up host forwarding rule"), "{}", second.stderr);

    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("the first instance still listens");
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(first.child.try_wait().unwrap().is_none(), "the first instance still runs");
}
