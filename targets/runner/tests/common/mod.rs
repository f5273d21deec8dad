//! Helpers shared by the host-side tests: build images with the same cargo
//! that runs the tests, boot them with the runner, run hosted builds.

#![allow(dead_code, reason = "each test file uses a different subset")]

pub mod dig;
pub mod guest;
pub mod nbd;
pub mod netns;
pub mod project;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub use unikernel_testing::{AARCH64, BARE, workspace};

pub const HOST: &str = "x86_64-unknown-linux-gnu";

fn cargo(args: &[&str]) {
    let status = Command::new(env!("CARGO")).args(args).current_dir(workspace()).status().expect("run cargo");
    assert!(status.success(), "cargo {args:?} failed");
}

/// Builds every example of the facade for `target` (debug), once per process.
pub fn examples(target: &'static str) -> PathBuf {
    static BUILT: [OnceLock<()>; 3] = [const { OnceLock::new() }; 3];
    let once = &BUILT[[BARE, AARCH64, HOST].iter().position(|&t| t == target).expect("a known target")];
    once.get_or_init(|| cargo(&["build", "--quiet", "-p", "unikernel-rt", "--examples", "--target", target]));
    target_dir().join(target).join("debug/examples")
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set, as cargo does.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).replace('\r', ""),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn assert(&self, status: i32, needles: &[&str]) {
        assert_eq!(self.status, status, "exit status\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        for needle in needles {
            assert!(
                self.stdout.contains(needle),
                "missing {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout,
                self.stderr
            );
        }
    }
}

/// Boots `image` with the runner. Tests use TCG unless `UNIKERNEL_ACCEL`
/// says otherwise: it is the accelerator every machine has.
pub fn boot(image: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_unikernel-runner"));
    if std::env::var_os("UNIKERNEL_ACCEL").is_none() {
        cmd.env("UNIKERNEL_ACCEL", "tcg");
    }
    Run::from(cmd.arg(image).args(["--timeout", "60"]).args(args).output().expect("run the runner"))
}

pub fn boot_example(name: &str, args: &[&str]) -> Run {
    boot(&examples(BARE).join(name), args)
}

/// Runs the hosted (Linux process) build of an example.
pub fn run_hosted(name: &str, args: &[&str]) -> Run {
    Run::from(Command::new(examples(HOST).join(name)).args(args).output().expect("run hosted example"))
}

/// Boots `target`'s `hello` with no QEMU on the PATH: the runner must fail
/// (status 2) naming `binary` and the Debian `package` that has it.
#[track_caller]
pub fn assert_missing_qemu_is_named(target: &'static str, binary: &str, package: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_unikernel-runner"))
        .arg(examples(target).join("hello"))
        .env("PATH", "/nonexistent")
        .output()
        .expect("runner");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let install = format!("apt-get install -y {package}");
    assert!(stderr.contains(&format!("{binary} not found")) && stderr.contains(&install), "{stderr}");
}

/// The QEMU command line the runner would use for `image` under TCG, one
/// argument per element (the images' paths contain no spaces).
pub fn qemu_words(image: &Path, args: &[&str]) -> Vec<String> {
    let printed = Command::new(env!("CARGO_BIN_EXE_unikernel-runner"))
        .arg(image)
        .args(["--print-command", "--accel", "tcg"])
        .args(args)
        .output()
        .expect("run the runner");
    String::from_utf8(printed.stdout).expect("UTF-8 command").split_whitespace().map(String::from).collect()
}
