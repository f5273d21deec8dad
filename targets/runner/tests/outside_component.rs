//! A component written outside this repository, the way any crate author
//! would: a crate `my-sensors` beside a new project, implementing
//! `unikernel::component::Component` and exporting its `thermo` macro. The
//! project names it with options; its code (not `macros/`) checks them; the
//! image boots in QEMU with the options reaching the component, and an
//! image that does not name it contains none of it.

mod common;

use common::project::{Project, text};
use common::workspace;
use std::fs;

const SENSORS_MANIFEST: &str = r#"[package]
name = "my-sensors"
version = "0.1.0"
edition = "2024"

[dependencies]
unikernel = { path = "WORKSPACE", package = "unikernel-rt" }
"#;

/// The component's `src/lib.rs`: the README's example, so that it is
/// compiled and booted as users read it.
fn sensors_lib() -> String {
    let readme = fs::read_to_string(workspace().join("README.md")).unwrap();
    let section = readme.split("## Writing a component").nth(1).expect("the README's component section");
    let block = section.split("```rs\n").nth(1).and_then(|b| b.split("```").next());
    block.expect("a ```rs block in the README's component section").to_string()
}

const APP_MAIN: &str = r#"#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;

#[unikernel(my_sensors::thermo(period_ms = 500), log = "info")]
async fn main(reading: my_sensors::Reading) -> Result<(), Error> {
    unikernel::println!("main: a reading every {} ms", reading.period_ms);
    Ok(())
}
"#;

#[test]
fn a_component_from_an_outside_crate_boots_with_options_its_own_code_checks() {
    let project = Project::new();
    let sensors = project.root.join("my-sensors");
    fs::create_dir_all(sensors.join("src")).unwrap();
    let manifest = SENSORS_MANIFEST.replace("WORKSPACE", &workspace().display().to_string());
    fs::write(sensors.join("Cargo.toml"), manifest).unwrap();
    fs::write(sensors.join("src/lib.rs"), sensors_lib()).unwrap();
    let app_manifest = project.app.join("Cargo.toml");
    let toml = fs::read_to_string(&app_manifest).unwrap();
    let toml = toml.replacen("[dependencies]\n", "[dependencies]\nmy-sensors = { path = \"../my-sensors\" }\n", 1);
    fs::write(&app_manifest, toml).unwrap();
    let main = project.app.join("src/main.rs");

    // Not named: the crate is a dependency, yet nothing of it is linked.
    let build = project.run(&["build", "--quiet"]);
    assert!(build.status.success(), "{}", text(&build));
    // Project::cargo builds in this target directory.
    let image = common::target_dir().join("external/x86_64-unknown-none/debug/myapp");
    let without = fs::read(&image).unwrap_or_else(|e| panic!("{}: {e}", image.display()));
    assert!(!contains(&without, b"my_sensors"), "an image that does not name thermo links my_sensors");

    // Named with options: they reach the component, which starts before
    // main and hands main its reading; the runner lists it from the image.
    fs::write(&main, APP_MAIN).unwrap();
    let run = project.run(&["run", "--quiet"]);
    assert!(run.status.success(), "{}", text(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let started = stdout.find("thermo: sampling every 500 ms").unwrap_or_else(|| panic!("{}", text(&run)));
    let main_ran = stdout.find("main: a reading every 500 ms").unwrap_or_else(|| panic!("{}", text(&run)));
    assert!(started < main_ran, "{}", text(&run));
    assert!(String::from_utf8_lossy(&run.stderr).contains("components: thermo"), "{}", text(&run));
    assert!(contains(&fs::read(&image).unwrap(), b"my_sensors"), "the control: a named component is linked");
    // Its NEEDS reach the runner through the image.
    let command = project.run(&["run", "--quiet", "--", "--print-command"]);
    assert!(String::from_utf8_lossy(&command.stdout).contains("-device virtio-rng-device"), "{}", text(&command));

    // A misspelt option is the compiler's error on the user's token,
    // produced by the component's own macro.
    fs::write(&main, APP_MAIN.replace("period_ms = 500", "perod_ms = 500")).unwrap();
    let typo = project.run(&["build", "--quiet"]);
    let stderr = String::from_utf8_lossy(&typo.stderr);
    assert!(!typo.status.success(), "{}", text(&typo));
    // rustc names the struct `Options`, or `my_sensors::Options` when
    // another `Options` is in sight.
    assert!(stderr.contains("Options` has no field named `perod_ms`"), "{}", text(&typo));
    assert!(stderr.contains("#[unikernel(my_sensors::thermo(perod_ms = 500), log = \"info\")]"), "{}", text(&typo));
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines.iter().position(|l| l.contains("thermo(perod_ms")).unwrap();
    let caret = lines[at + 1];
    assert_eq!(caret.find('^'), lines[at].find("perod_ms"), "the error points at the misspelt option\n{stderr}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
