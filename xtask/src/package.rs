//! The packaging group of `cargo xtask test`: every crate that can be
//! published is packaged as crates.io would receive it and built from that
//! `.crate` alone, so publishing is one `cargo publish --workspace` away.
//!
//! Libraries are verified for bare metal, where images run, and everything
//! (the runner, and the hosted build of the libraries) for the host. Each
//! crate counts as one test: it passes when its metadata is complete, its
//! `.crate` holds both licence texts and its README, and it built.

use crate::tally::Tally;
use crate::{BARE, HOST, cargo};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Licence texts every `.crate` carries (`license = "MIT OR Apache-2.0"`).
const LICENSE_FILES: [&str; 2] = ["LICENSE-MIT", "LICENSE-APACHE"];

/// A workspace member that is not `publish = false`.
struct Crate {
    name: String,
    version: String,
    readme: Option<String>,
    is_library: bool,
    problems: Vec<String>,
}

impl Crate {
    fn from_metadata(package: &Value) -> Self {
        let text = |key: &str| package[key].as_str().filter(|s| !s.trim().is_empty()).map(str::to_string);
        let listed = |key: &str| package[key].as_array().is_some_and(|list| !list.is_empty());
        let mut problems = Vec::new();
        // What crates.io shows and searches by; `license` needs no file.
        for key in ["description", "license"] {
            if text(key).is_none() {
                problems.push(format!("no `{key}`"));
            }
        }
        let readme = text("readme");
        if readme.is_none() {
            problems.push("no README.md beside Cargo.toml and no `readme`".into());
        }
        for key in ["keywords", "categories"] {
            if !listed(key) {
                problems.push(format!("no `{key}`"));
            }
        }
        let mut kinds =
            package["targets"].as_array().into_iter().flatten().flat_map(|t| t["kind"].as_array()).flatten();
        // A crate with a program in it (the runner) runs on the host only.
        let is_library = !kinds.any(|kind| kind == "bin");
        Crate {
            name: text("name").unwrap_or_default(),
            version: text("version").unwrap_or_default(),
            readme,
            is_library,
            problems,
        }
    }

    fn file_name(&self) -> String {
        format!("{}-{}.crate", self.name, self.version)
    }

    /// Adds what the packaged `.crate` lacks to `problems`.
    fn check_contents(&mut self, dir: &Path) {
        let archive = dir.join(self.file_name());
        let listing = match Command::new("tar").arg("-tzf").arg(&archive).output() {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            _ => return self.problems.push(format!("no readable {}", archive.display())),
        };
        let root = format!("{}-{}/", self.name, self.version);
        // cargo stores a readme from outside the crate under its file name.
        let readme = self.readme.as_deref().and_then(|r| Path::new(r).file_name()?.to_str());
        for file in LICENSE_FILES.into_iter().chain(readme) {
            if !listing.lines().any(|line| line == format!("{root}{file}")) {
                self.problems.push(format!("{} lacks {file}", self.file_name()));
            }
        }
    }
}

/// Packages and verifies every publishable crate; returns whether all
/// passed, and one test per crate.
pub fn check() -> Result<(bool, Tally), String> {
    let metadata = metadata()?;
    let mut crates: Vec<Crate> = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata lists no packages")?
        .iter()
        .filter(|p| publishable(p))
        .map(Crate::from_metadata)
        .collect();
    // Its own target directory: cleaning our crates' builds there (below)
    // leaves the tests' builds alone.
    let workspace_target = metadata["target_directory"].as_str().ok_or("cargo metadata names no target directory")?;
    let target_dir = Path::new(workspace_target).join("package-check");
    forget_earlier_runs(&target_dir, &crates)?;

    let everything: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
    let libraries: Vec<&str> = crates.iter().filter(|c| c.is_library).map(|c| c.name.as_str()).collect();
    let bare_ok = package(&target_dir, BARE, &libraries)?;
    let host_ok = package(&target_dir, HOST, &everything)?;
    for krate in &mut crates {
        if host_ok && (bare_ok || !krate.is_library) {
            krate.check_contents(&target_dir.join("package"));
        } else {
            // cargo removes every `.crate` of a run that failed.
            krate.problems.push("`cargo package` failed (its error is above)".into());
        }
    }

    let mut tally = Tally::default();
    for krate in &crates {
        if krate.problems.is_empty() {
            tally.passed += 1;
        } else {
            tally.failed += 1;
            eprintln!("xtask: package {} is not ready to publish: {}", krate.name, krate.problems.join("; "));
        }
    }
    eprintln!("xtask: {} of {} publishable crates packaged and verified", tally.passed, crates.len());
    Ok((tally.failed == 0, tally))
}

/// Removes what an earlier run left that this one could mistake for its own.
/// The dependents of a crate are verified against its copy in a temporary
/// registry, which has the same name and version from run to run; cargo
/// takes such a copy for unchanged, so without this a dependent would be
/// built against the crate's old sources:
/// - the `.crate` files and the temporary registry (`package/`);
/// - cargo's builds of our crates (`cargo clean -p`, both targets);
/// - cargo's unpacked copies, `CARGO_HOME/registry/src/-HASH/NAME-VERSION`
///   (a local registry has no host name before the hash), which cargo
///   reuses without comparing them to the registry's.
fn forget_earlier_runs(target_dir: &Path, crates: &[Crate]) -> Result<(), String> {
    remove(&target_dir.join("package"))?;
    let mut clean = cargo();
    clean.args(["clean", "--quiet", "--target", BARE, "--target", HOST]).arg("--target-dir").arg(target_dir);
    for krate in crates {
        clean.args(["-p", &krate.name]);
    }
    if !clean.status().is_ok_and(|s| s.success()) {
        return Err("cargo clean of the packaged crates failed".into());
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let Ok(sources) = std::fs::read_dir(cargo_home.join("registry").join("src")) else {
        return Ok(());
    };
    for source in sources.flatten().filter(|s| s.file_name().to_string_lossy().starts_with('-')) {
        for krate in crates {
            remove(&source.path().join(format!("{}-{}", krate.name, krate.version)))?;
        }
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("cannot remove {}: {e}", path.display())),
        _ => Ok(()),
    }
}

/// `publish = false` reads as an empty list of registries, no `publish` as null.
fn publishable(package: &Value) -> bool {
    package["publish"].as_array().is_none_or(|registries| !registries.is_empty())
}

fn metadata() -> Result<Value, String> {
    let out = cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))
}

/// `cargo package` of `crates` together (each finds the others in a local
/// registry, as it will find them on crates.io), each built for `target`.
fn package(target_dir: &Path, target: &str, crates: &[&str]) -> Result<bool, String> {
    let mut cmd = cargo();
    // A work tree with uncommitted changes is packaged as it is.
    cmd.args(["package", "--allow-dirty", "--target", target]).arg("--target-dir").arg(target_dir);
    for name in crates {
        cmd.args(["-p", name]);
    }
    eprintln!("xtask: packaging for {target}: cargo package -p {}", crates.join(" -p "));
    let status = cmd.status().map_err(|e| format!("cannot run cargo package: {e}"))?;
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::{Crate, publishable};
    use serde_json::json;

    /// A package as `cargo metadata` describes it, with every field set.
    fn package(kinds: &[&str]) -> serde_json::Value {
        json!({
            "name": "unikernel-net", "version": "0.1.0", "publish": null,
            "description": "The `net` component", "license": "MIT OR Apache-2.0", "readme": "README.md",
            "keywords": ["unikernel"], "categories": ["no-std"],
            "targets": kinds.iter().map(|kind| json!({ "kind": [kind] })).collect::<Vec<_>>(),
        })
    }

    #[test]
    fn complete_metadata_has_no_problems() {
        let krate = Crate::from_metadata(&package(&["lib"]));
        assert!(krate.problems.is_empty(), "{:?}", krate.problems);
        assert!(krate.is_library);
        assert_eq!(krate.file_name(), "unikernel-net-0.1.0.crate");
    }

    #[test]
    fn each_missing_field_is_named() {
        let mut p = package(&["lib"]);
        p["description"] = json!("  ");
        p["readme"] = json!(null);
        p["keywords"] = json!([]);
        p.as_object_mut().unwrap().remove("categories");
        let problems = Crate::from_metadata(&p).problems;
        assert_eq!(problems.len(), 4, "{problems:?}");
        for field in ["description", "README.md", "keywords", "categories"] {
            assert!(problems.iter().any(|p| p.contains(field)), "{field} not in {problems:?}");
        }
    }

    #[test]
    fn a_crate_with_a_program_is_built_for_the_host_only() {
        assert!(!Crate::from_metadata(&package(&["bin"])).is_library);
        assert!(Crate::from_metadata(&package(&["proc-macro"])).is_library);
        assert!(Crate::from_metadata(&package(&["lib", "example", "test"])).is_library);
    }

    #[test]
    fn publish_false_is_left_out() {
        let mut p = package(&["lib"]);
        assert!(publishable(&p));
        p["publish"] = json!([]);
        assert!(!publishable(&p), "publish = false");
        p["publish"] = json!(["crates-io"]);
        assert!(publishable(&p));
    }
}
