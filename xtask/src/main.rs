//! `cargo xtask run ARGS`: `cargo run ARGS` once the bare-metal target is
//! installed (the README's first command: `cargo xtask run --example hello`).
//! `cargo xtask test`: every test of the project, and `cargo package` of every
//! publishable crate, summed up at the end (`cargo xtask package`: that alone).
//! `cargo xtask bench [RUNS]`: image sizes and boot times, side by side with
//! a floor kernel, in one run (`cargo xtask bench-aarch64 [RUNS]`: only the
//! aarch64 tables).
//! `cargo xtask fuzz [TARGET] [RUNS]`: the libFuzzer targets (nightly).
//! `cargo xtask new DIR`: a new unikernel crate, ready to `cargo run`.

mod bench;
mod fuzz;
mod new;
mod package;
mod tally;
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const HOST: &str = "x86_64-unknown-linux-gnu";
const BARE: &str = "x86_64-unknown-none";
/// The second bare-metal target, booted on QEMU's aarch64 `virt` (TCG).
const AARCH64: &str = "aarch64-unknown-none";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace());
    cmd
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => ensure_target().and_then(|()| run(&args[1..])),
        Some("test") => ensure_target().and_then(|()| test()),
        Some("bench") => bench::run(runs_arg(&args)),
        Some("bench-aarch64") => bench::run_aarch64(runs_arg(&args)),
        Some("fuzz") => fuzz_args(&args[1..]).and_then(|(target, runs)| fuzz::run(target, runs)),
        Some("package") => package::check().and_then(|(ok, _)| if ok { Ok(()) } else { Err("not ready to publish".into()) }),
        Some("new") if args.len() == 2 => ensure_target().and_then(|()| new::run(Path::new(&args[1]))),
        _ => Err("usage: cargo xtask run [CARGO RUN ARGS] | cargo xtask test | cargo xtask bench[-aarch64] [RUNS] | cargo xtask fuzz [TARGET] [RUNS] | cargo xtask new DIR | cargo xtask package"
            .to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A bench's optional `RUNS`.
fn runs_arg(args: &[String]) -> Option<Result<usize, String>> {
    args.get(1).map(|r| r.parse().map_err(|_| format!("RUNS must be a number, not {r}")))
}

/// `[TARGET] [RUNS]`: a number is RUNS, anything else a target name.
fn fuzz_args(args: &[String]) -> Result<(Option<&str>, u64), String> {
    let (mut target, mut runs) = (None, 1_000_000);
    for arg in args {
        match arg.parse() {
            Ok(n) => runs = n,
            Err(_) if target.is_none() => target = Some(arg.as_str()),
            Err(_) => return Err(format!("unexpected argument {arg}: cargo xtask fuzz [TARGET] [RUNS]")),
        }
    }
    Ok((target, runs))
}

/// rustup installs a missing toolchain with the targets its file lists, but
/// not a target missing from an installed toolchain: a fresh machine that
/// already has this Rust version needs the bare-metal targets added.
fn ensure_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(workspace())
        .output()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    let installed = String::from_utf8_lossy(&installed.stdout);
    for target in [BARE, AARCH64] {
        if installed.lines().any(|t| t.trim() == target) {
            continue;
        }
        eprintln!("xtask: adding the {target} target to this toolchain");
        let status = Command::new("rustup").args(["target", "add", target]).current_dir(workspace()).status();
        if !status.is_ok_and(|s| s.success()) {
            return Err(format!("`rustup target add {target}` failed"));
        }
    }
    Ok(())
}

/// `cargo run ARGS`, exiting with its status (the unikernel's).
fn run(args: &[String]) -> Result<(), String> {
    let status = cargo().arg("run").args(args).status().map_err(|e| e.to_string())?;
    std::process::exit(status.code().unwrap_or(1))
}

/// Host tests (unit, trybuild, boot, ELF, hosted guest tests), then the
/// in-guest tests in QEMU, then the packaged crates (package.rs). Tests run
/// under TCG unless UNIKERNEL_ACCEL is set.
fn test() -> Result<(), String> {
    tools::ensure()?;
    let accel = std::env::var("UNIKERNEL_ACCEL").unwrap_or_else(|_| "tcg".into());
    let steps: [(&str, Vec<&str>); 3] = [
        ("host tests", vec!["test", "--no-fail-fast", "--workspace", "--exclude", "floor", "--target", HOST]),
        // `--tests`: the facade's doc example is a host program (cargo would
        // build doctests for the bare-metal target too).
        ("in-guest tests in QEMU", vec!["test", "--no-fail-fast", "-p", "unikernel-rt", "--tests", "--target", BARE]),
        (
            "in-guest tests in QEMU, aarch64",
            vec!["test", "--no-fail-fast", "-p", "unikernel-rt", "--tests", "--target", AARCH64],
        ),
    ];
    let mut total = tally::Tally::default();
    let mut failed_steps = Vec::new();
    for (name, args) in steps {
        eprintln!("xtask: {name}: cargo {}", args.join(" "));
        let mut cmd = cargo();
        cmd.args(&args).env("UNIKERNEL_ACCEL", &accel);
        let started = Instant::now();
        let (ok, tally) = tally::run(cmd)?;
        eprintln!("xtask: {name}: {} s", started.elapsed().as_secs());
        total += tally;
        if !ok {
            failed_steps.push(name);
        }
    }
    let started = Instant::now();
    let (packaged, tally) = package::check()?;
    eprintln!("xtask: packaging: {} s", started.elapsed().as_secs());
    total += tally;
    if !packaged {
        failed_steps.push("packaging");
    }
    println!("\ntotal: {} passed, {} failed", total.passed, total.failed);
    if failed_steps.is_empty() && total.failed == 0 {
        Ok(())
    } else {
        Err(format!("failing: {}", failed_steps.join(", ")))
    }
}
