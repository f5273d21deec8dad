//! The README's "your own unikernel crate" section, followed literally in a
//! crate outside this workspace: install the runner, add the dependencies
//! and the config lines, `cargo run` and `cargo doc`.

mod common;

use common::workspace;
use std::fs;
use std::process::Command;

#[test]
fn a_crate_outside_the_workspace_builds_and_boots() {
    let root = std::env::temp_dir().join(format!("unikernel-external-{}", std::process::id()));
    let app = root.join("myapp");
    fs::create_dir_all(app.join("src")).unwrap();
    fs::create_dir_all(app.join(".cargo")).unwrap();
    let ws = workspace();
    let cargo = env!("CARGO");

    // Step 1 of the README: install the runner.
    let install = Command::new(cargo)
        .args(["install", "--quiet", "--locked", "--path"])
        .arg(ws.join("targets/runner"))
        .arg("--root")
        .arg(root.join("tools"))
        .env("CARGO_TARGET_DIR", ws.join("target/external"))
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(install.success(), "cargo install of the runner failed");

    // Steps 2-4: dependency, toolchain file, cargo config.
    fs::write(
        app.join("Cargo.toml"),
        format!(
            "[package]\nname = \"myapp\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n\
             unikernel = {{ path = {:?} }}\nunikernel-entropy = {{ path = {:?} }}\n",
            ws,
            ws.join("devices/entropy")
        ),
    )
    .unwrap();
    fs::copy(ws.join("rust-toolchain.toml"), app.join("rust-toolchain.toml")).unwrap();
    let readme = fs::read_to_string(ws.join("README.md")).unwrap();
    let config = readme
        .split("```toml\n# .cargo/config.toml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("README shows .cargo/config.toml");
    fs::write(app.join(".cargo/config.toml"), config).unwrap();
    fs::write(
        app.join("src/main.rs"),
        r#"#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_entropy::Entropy;

#[unikernel(entropy, log = "debug", stack_size = "128K")]
fn main(rng: Entropy) -> Result<(), Error> {
    unikernel::println!("external app says {} ({:?})", unikernel::cmdline::get(), rng.source());
    Ok(())
}
"#,
    )
    .unwrap();

    let path = format!("{}:{}", root.join("tools/bin").display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(cargo)
        .args(["run", "--quiet", "--", "hi"])
        .current_dir(&app)
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", ws.join("target/external"))
        .env("UNIKERNEL_ACCEL", std::env::var("UNIKERNEL_ACCEL").unwrap_or("tcg".into()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo run failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("external app says hi"), "{stdout}\n{stderr}");
    assert!(stdout.contains("[DEBUG"), "log = \"debug\" took effect: {stdout}");

    // The config's `rustdocflags` carry getrandom's backend cfg (a
    // dependency of `unikernel-entropy`) to rustdoc, or `cargo doc` fails.
    let doc = Command::new(cargo)
        .args(["doc", "--quiet"])
        .current_dir(&app)
        .env("CARGO_TARGET_DIR", ws.join("target/external"))
        .output()
        .unwrap();
    assert!(doc.status.success(), "cargo doc failed\n{}", String::from_utf8_lossy(&doc.stderr));
    fs::remove_dir_all(&root).unwrap();
}
