//! A new user's project outside this workspace, made by `cargo xtask new`.

use super::{target_dir, workspace};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A project made by `cargo xtask new` in a temporary directory, removed
/// when dropped.
pub struct Project {
    /// The temporary directory: the project, the installed runner, and
    /// whatever else a test puts beside them.
    pub root: PathBuf,
    /// The new crate, `myapp`.
    pub app: PathBuf,
}

impl Project {
    pub fn new() -> Self {
        let root = std::env::temp_dir().join(format!("unikernel-template-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let project = Self { app: root.join("myapp"), root };
        let out = project.cargo(&workspace(), &["xtask", "new"], Some(&project.app));
        assert!(out.status.success(), "cargo xtask new failed\n{}", text(&out));
        project
    }

    /// `cargo ARGS [PATH]` in `dir`, with the runner `xtask new` installed
    /// on PATH and a target directory shared between runs of this test.
    pub fn cargo(&self, dir: &Path, args: &[&str], path: Option<&Path>) -> Output {
        let tools = self.root.join("tools");
        let search = format!("{}:{}", tools.join("bin").display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(args).args(path).current_dir(dir);
        cmd.env("CARGO_INSTALL_ROOT", &tools)
            .env("PATH", search)
            .env("CARGO_TARGET_DIR", target_dir().join("external"));
        cmd.env("UNIKERNEL_ACCEL", std::env::var("UNIKERNEL_ACCEL").unwrap_or("tcg".into()));
        cmd.output().unwrap()
    }

    /// `cargo ARGS` in the new crate.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cargo(&self.app, args, None)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Both streams of `out`, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
