//! `--gdb`: the guest waits for Debian's gdb, which breaks in the user's
//! `main`, backtraces through the runtime's frames with source lines, steps
//! a line, reads a static, and lets the guest run on to its exit. Under
//! TCG, as everywhere here.

mod common;

use common::guest::free_port;
use common::{BARE, examples};
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// gdb in batch mode against `image` on `port`, retried while QEMU has not
/// opened its gdb server yet (a refused connection touches nothing).
fn gdb(image: &std::path::Path, port: u16, commands: &[&str]) -> Output {
    let target = format!("target remote 127.0.0.1:{port}");
    for _ in 0..100 {
        let mut cmd = Command::new("gdb");
        cmd.args(["-batch", "-nx", "-ex", &target]);
        for c in commands {
            cmd.args(["-ex", c]);
        }
        let out = cmd.arg(image).output().expect("run gdb (Debian's gdb package)");
        if !String::from_utf8_lossy(&out.stderr).contains("Connection refused") {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("QEMU's gdb server never opened on port {port}");
}

#[test]
fn gdb_breaks_in_main_backtraces_with_source_lines_and_the_guest_runs_on() {
    let image = examples(BARE).join("hello");
    let port = free_port();
    let mut runner = Command::new(env!("CARGO_BIN_EXE_unikernel-runner"))
        .arg(&image)
        .args(["--accel", "tcg", "--timeout", "120", "--gdb", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the runner");
    // The runner says how to attach before the guest runs.
    let mut stderr = BufReader::new(runner.stderr.take().expect("stderr"));
    let mut told = String::new();
    while !told.contains("target remote") {
        assert!(stderr.read_line(&mut told).expect("read the runner") > 0, "runner said: {told}");
    }
    assert!(told.contains(&format!("gdb -ex 'target remote 127.0.0.1:{port}' {}", image.display())), "{told}");

    let out = gdb(
        &image,
        port,
        &[
            "break hello::__unikernel_user_main",
            "continue",
            "bt",
            "next",
            "print hello::__UNIKERNEL_APP.config.stack_size",
            "continue",
        ],
    );
    let gdb_said = String::from_utf8_lossy(&out.stdout);
    assert!(gdb_said.contains("Breakpoint 1, hello::__unikernel_user_main () at examples/hello.rs:"), "{gdb_said}");
    let backtrace: Vec<&str> = gdb_said.lines().filter(|l| l.starts_with('#')).collect();
    for frame in ["hello::__unikernel_user_main", "unikernel_core::runtime::start", "unikernel_x86_64::run_app"] {
        assert!(backtrace.iter().any(|l| l.contains(frame)), "no {frame} in the backtrace:\n{gdb_said}");
    }
    assert!(
        backtrace.iter().any(|l| l.contains("core/src/runtime.rs:")),
        "frames name their source lines:\n{gdb_said}"
    );

    // Continued, the guest finishes as without gdb.
    let run = runner.wait_with_output().expect("the runner ends");
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stdout));
    assert!(String::from_utf8_lossy(&run.stdout).contains("Hello from a unikernel!"));
}

#[test]
fn gdb_breaks_inside_an_async_main_and_the_server_serves_after_detach() {
    let image = examples(BARE).join("http");
    // The line of http's main where it starts listening.
    let source = std::fs::read_to_string(common::workspace().join("examples/http.rs")).expect("read http.rs");
    let line = source.lines().position(|l| l.contains(".tcp_listen")).expect("http listens") + 1;
    let (port, web) = (free_port(), free_port());
    let mut runner = Command::new(env!("CARGO_BIN_EXE_unikernel-runner"))
        .arg(&image)
        .args(["--accel", "tcg", "--timeout", "120", "--gdb", &port.to_string()])
        .args(["--forward", &format!("{web}:80")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the runner");

    let out = gdb(&image, port, &[&format!("break http.rs:{line}"), "continue", "bt", "detach"]);
    let gdb_said = String::from_utf8_lossy(&out.stdout);
    assert!(gdb_said.contains(&format!("at examples/http.rs:{line}")), "{gdb_said}");
    let backtrace: Vec<&str> = gdb_said.lines().filter(|l| l.starts_with('#')).collect();
    // The async main is polled by the executor, inside the runtime.
    for frame in [
        "http::__unikernel_user_main::{async_fn#0}",
        "unikernel_core::executor::block_on",
        "unikernel_core::runtime::start",
    ] {
        assert!(backtrace.iter().any(|l| l.contains(frame)), "no {frame} in the backtrace:\n{gdb_said}");
    }

    // Detached, the guest serves.
    let mut stdout = BufReader::new(runner.stdout.take().expect("stdout"));
    let mut console = String::new();
    while !console.contains("serving on") {
        assert!(stdout.read_line(&mut console).expect("read the console") > 0, "console: {console}");
    }
    let page = Command::new("curl").args(["-sS", "--max-time", "10"]).arg(format!("http://127.0.0.1:{web}/")).output();
    let page = page.expect("run curl");
    runner.kill().expect("stop the runner");
    let _ = runner.wait();
    assert!(page.status.success(), "{}", String::from_utf8_lossy(&page.stderr));
}
