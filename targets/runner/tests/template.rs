//! A new user's first hour, outside this workspace: `cargo xtask new`, then
//! `cargo run`, `cargo test` and `cargo doc` in the new crate; naming a
//! component whose crate is missing, and uncommenting its line.

mod common;

use common::project::{Project, text};
use common::workspace;
use std::fs;

#[test]
fn a_new_project_runs_tests_and_documents_itself() {
    let project = Project::new();

    // The README shows the generated config; they must not drift apart.
    let readme = fs::read_to_string(workspace().join("README.md")).unwrap();
    let shown = readme.split("```toml\n# .cargo/config.toml\n").nth(1).and_then(|s| s.split("```").next());
    let config = fs::read_to_string(project.app.join(".cargo/config.toml")).unwrap();
    assert_eq!(shown, Some(config.as_str()), "README's .cargo/config.toml differs from the template's");

    let run = project.run(&["run", "--quiet"]);
    assert!(run.status.success(), "cargo run failed\n{}", text(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("Hello from myapp! (slept 10 ms"), "{}", text(&run));

    let test = project.run(&["test", "--quiet"]);
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "cargo test failed\n{}", text(&test));
    assert!(stdout.contains("test greeting_names_the_app ... ok"), "{}", text(&test));
    assert!(stdout.contains("2 passed, 0 failed"), "{}", text(&test));

    let doc = project.run(&["doc", "--quiet"]);
    assert!(doc.status.success(), "cargo doc failed\n{}", text(&doc));
    assert!(project.app.join("Cargo.toml").exists());

    // Naming a component whose crate is not a dependency fails on the
    // name; uncommenting the crate's line in Cargo.toml is all it takes.
    let main = project.app.join("src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    let with_entropy = source
        .replace("#[unikernel(log = \"info\")]", "#[unikernel(unikernel_entropy::entropy, log = \"info\")]")
        .replace("async fn main()", "async fn main(_: unikernel_entropy::Entropy)");
    assert_ne!(source, with_entropy, "the template's main changed: update this test");
    fs::write(&main, with_entropy).unwrap();
    let missing = project.run(&["build", "--quiet"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success(), "built without unikernel-entropy\n{}", text(&missing));
    assert!(stderr.contains("unresolved module or unlinked crate `unikernel_entropy`"), "{}", text(&missing));
    let manifest = project.app.join("Cargo.toml");
    let toml = fs::read_to_string(&manifest).unwrap();
    let uncommented = toml.replace("# unikernel-entropy = ", "unikernel-entropy = ");
    assert_ne!(toml, uncommented, "no commented unikernel-entropy line in the template's Cargo.toml");
    fs::write(&manifest, uncommented).unwrap();
    let fixed = project.run(&["build", "--quiet"]);
    assert!(fixed.status.success(), "uncommenting unikernel-entropy did not fix the build\n{}", text(&fixed));
}
