//! `cargo xtask fuzz [TARGET] [RUNS]`: runs the cargo-fuzz targets of
//! `fuzz/` (all, or one) for RUNS executions each (default 1,000,000) and
//! prints one line of figures per target. libFuzzer needs nightly Rust and
//! cargo-fuzz; both are installed when missing. The product itself never
//! needs nightly: the stable test suite replays the committed corpora.
//!
//! New inputs go to `target/fuzz-corpus/TARGET`, seeded from the committed
//! `fuzz/corpus/TARGET`, so a run never rewrites the committed corpus;
//! crashes land in `fuzz/artifacts/TARGET` and fail the command.

use crate::workspace;
use std::path::Path;
use std::process::{Command, Stdio};

/// Target names, from `fuzz/Cargo.toml`'s `[[bin]]` sections.
fn targets(root: &Path) -> Result<Vec<String>, String> {
    let manifest =
        std::fs::read_to_string(root.join("fuzz/Cargo.toml")).map_err(|e| format!("fuzz/Cargo.toml: {e}"))?;
    Ok(manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|bin| bin.lines().find_map(|l| l.strip_prefix("name = ")).map(|n| n.trim_matches('"').to_string()))
        .collect())
}

/// `rustup run nightly ARGS`, outside this workspace's pinned toolchain.
fn nightly(args: &[&str]) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly"]).args(args);
    for var in ["RUSTUP_TOOLCHAIN", "CARGO", "RUSTC", "RUSTDOC", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET"] {
        cmd.env_remove(var);
    }
    cmd
}

fn ensure_tools() -> Result<(), String> {
    let have_nightly = nightly(&["rustc", "--version"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !have_nightly.is_ok_and(|s| s.success()) {
        eprintln!("xtask: installing the nightly toolchain (for libFuzzer only)");
        let ok = Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]).status();
        if !ok.is_ok_and(|s| s.success()) {
            return Err("`rustup toolchain install nightly --profile minimal` failed".into());
        }
    }
    let have_fuzz = nightly(&["cargo", "fuzz", "--version"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !have_fuzz.is_ok_and(|s| s.success()) {
        eprintln!("xtask: installing cargo-fuzz");
        let ok = Command::new("cargo").args(["install", "cargo-fuzz"]).status();
        if !ok.is_ok_and(|s| s.success()) {
            return Err("`cargo install cargo-fuzz` failed".into());
        }
    }
    Ok(())
}

/// libFuzzer's last status line (`#N DONE cov: ... corp: ...`) and its
/// closing `Done N runs in S second(s)`.
fn figures(stderr: &str) -> String {
    let status = stderr
        .lines()
        .rev()
        .find(|l| l.strip_prefix('#').is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit())))
        .unwrap_or("");
    let done = stderr.lines().find(|l| l.starts_with("Done ")).unwrap_or("no summary");
    format!("{done}; {status}")
}

pub fn run(target: Option<&str>, runs: u64) -> Result<(), String> {
    ensure_tools()?;
    let root = workspace();
    let all = targets(&root)?;
    let chosen: Vec<&String> = all.iter().filter(|t| target.is_none_or(|want| want == t.as_str())).collect();
    if chosen.is_empty() {
        return Err(format!("no fuzz target {}; targets: {}", target.unwrap_or(""), all.join(", ")));
    }
    let mut failed = Vec::new();
    for name in chosen {
        let scratch = root.join("target/fuzz-corpus").join(name);
        std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
        let committed = root.join("fuzz/corpus").join(name);
        eprintln!("xtask: fuzzing {name} for {runs} executions");
        let output = nightly(&["cargo", "fuzz", "run", name])
            .arg(&scratch)
            .arg(&committed)
            .args(["--", &format!("-runs={runs}"), "-print_final_stats=1"])
            .current_dir(root.join("fuzz"))
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            println!("{name}: {}", figures(&stderr));
        } else {
            eprintln!("{stderr}");
            println!("{name}: FAILED ({})", figures(&stderr));
            failed.push(name.as_str());
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(format!("fuzz targets failing: {}", failed.join(", "))) }
}
