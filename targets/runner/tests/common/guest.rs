//! A guest booted in the background by the runner, for tests that talk to
//! it while it runs.

use super::{BARE, examples};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A guest running in the background; killed when dropped.
pub struct Guest {
    child: Child,
    console: Arc<Mutex<String>>,
}

impl Guest {
    /// Boots example `name` with the runner; `wrap` prefixes the command
    /// (e.g. `ip netns exec NS`).
    pub fn start(wrap: &[&str], name: &str, args: &[&str]) -> Self {
        let runner = env!("CARGO_BIN_EXE_unikernel-runner");
        let image = examples(BARE).join(name);
        let mut words: Vec<String> = wrap.iter().map(|s| s.to_string()).collect();
        words.push(runner.into());
        words.push(image.display().to_string());
        words.extend(["--accel", "tcg", "--timeout", "300"].map(String::from));
        words.extend(args.iter().map(|s| s.to_string()));
        // Its own process group, so that dropping the guest stops QEMU
        // (the runner's child) too.
        let mut child = Command::new(&words[0])
            .args(&words[1..])
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the runner");
        let console = Arc::new(Mutex::new(String::new()));
        let (stdout, sink) = (child.stdout.take().expect("piped"), console.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut console = sink.lock().unwrap();
                console.push_str(&line);
                console.push('\n');
            }
        });
        Self { child, console }
    }

    /// Waits until the console shows `needle`; returns the console.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let console = self.console.lock().unwrap().clone();
            if console.contains(needle) {
                return console;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("guest exited ({status}) before printing {needle:?}:\n{console}");
            }
            assert!(start.elapsed() < Duration::from_secs(120), "no {needle:?} in 120 s:\n{console}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Guest {
    /// Cuts the power: SIGKILL to the runner and QEMU at once.
    pub fn kill(mut self) {
        let _ = run("kill", &["-KILL", "--", &format!("-{}", self.child.id())]);
        let _ = self.child.wait();
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = run("kill", &["--", &format!("-{}", self.child.id())]);
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

pub fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// A JSON number field of the http example's `/api/status`.
pub fn field(json: &str, name: &str) -> u64 {
    let at = json.find(&format!("\"{name}\":")).unwrap_or_else(|| panic!("no {name} in {json}"));
    json[at + name.len() + 3..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}
