//! A guest booted in the background by the runner (or a hosted build run
//! as a process), for tests that talk to it while it runs.

use super::{BARE, HOST, examples};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A guest running in the background; killed when dropped.
pub struct Guest {
    child: Child,
    console: Arc<Mutex<String>>,
    /// The runner's own messages (stderr), also passed on to the test's.
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// Collects the lines of `from` as they come, until its end; `echo`
/// passes them on to the test's stderr.
fn collect(from: impl Read + Send + 'static, echo: bool) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if echo {
                eprintln!("{line}");
            }
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    (text, reader)
}

impl Guest {
    /// Boots example `name` with the runner; `wrap` prefixes the command
    /// (e.g. `ip netns exec NS`).
    pub fn start(wrap: &[&str], name: &str, args: &[&str]) -> Self {
        Self::start_on(BARE, wrap, name, args)
    }

    /// [`Guest::start`] for the image built for `target`.
    pub fn start_on(target: &'static str, wrap: &[&str], name: &str, args: &[&str]) -> Self {
        let runner = env!("CARGO_BIN_EXE_unikernel-runner");
        let image = examples(target).join(name);
        let mut words: Vec<String> = wrap.iter().map(|s| s.to_string()).collect();
        words.push(runner.into());
        words.push(image.display().to_string());
        words.extend(["--accel", "tcg", "--timeout", "300"].map(String::from));
        words.extend(args.iter().map(|s| s.to_string()));
        let mut command = Command::new(&words[0]);
        command.args(&words[1..]);
        Self::spawn(command)
    }

    /// Runs the hosted build of example `name` with environment `env`.
    pub fn hosted(name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(examples(HOST).join(name));
        command.args(args).env_remove("UNIKERNEL_FORWARD").envs(env.iter().copied());
        Self::spawn(command)
    }

    fn spawn(mut command: Command) -> Self {
        // Its own process group, so that dropping the guest stops QEMU
        // (the runner's child) too.
        let mut child = command
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let (console, out) = collect(child.stdout.take().expect("piped"), false);
        let (stderr, err) = collect(child.stderr.take().expect("piped"), true);
        Self { child, console, stderr, readers: vec![out, err] }
    }

    /// Waits until the console shows `needle`; returns the console.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let console = self.console.clone();
        self.wait_in(&console, needle)
    }

    /// Waits until the runner's stderr shows `needle`; returns it.
    pub fn wait_for_stderr(&mut self, needle: &str) -> String {
        let stderr = self.stderr.clone();
        self.wait_in(&stderr, needle)
    }

    fn wait_in(&mut self, text: &Mutex<String>, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let seen = text.lock().unwrap().clone();
            if seen.contains(needle) {
                return seen;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("guest exited ({status}) before printing {needle:?}:\n{seen}");
            }
            assert!(start.elapsed() < Duration::from_secs(120), "no {needle:?} in 120 s:\n{seen}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Guest {
    /// Cuts the power: SIGKILL to the runner and QEMU at once.
    /// Stops the guest as Ctrl-C would and returns all it printed: the
    /// console and the runner's stderr.
    pub fn stop(self) -> (String, String) {
        let _ = run("kill", &["-INT", "--", &format!("-{}", self.child.id())]);
        self.wait()
    }

    /// Waits for the runner to end; returns the console and its stderr.
    pub fn wait(mut self) -> (String, String) {
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        (self.console.lock().unwrap().clone(), self.stderr.lock().unwrap().clone())
    }

    /// The runner's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the runner has printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

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
