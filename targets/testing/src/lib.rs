//! Host-side helpers for tests that build bare-metal images of this
//! workspace, boot them through the runner and read their ELF: what a
//! component crate's QEMU test needs, in one place. A dev-dependency by
//! path only, so packaging drops it.
#![forbid(unsafe_code)]

use object::{Object, ObjectSection, ObjectSymbol};
use std::path::{Path, PathBuf};
use std::process::Command;
use unikernel_core::vmm::{self, Kind, Record};

/// The bare-metal target.
pub const BARE: &str = "x86_64-unknown-none";
/// The aarch64 bare-metal target (QEMU's `virt`, under TCG here).
pub const AARCH64: &str = "aarch64-unknown-none";

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// What a cargo run printed.
pub struct Cargo {
    /// Whether it succeeded.
    pub ok: bool,
    /// Standard output: a booted image's console.
    pub stdout: String,
    /// Standard error: cargo's and the runner's messages.
    pub stderr: String,
}

/// Runs cargo for bare metal at the workspace root with `env` added;
/// images boot through the runner under TCG.
pub fn cargo_bare(args: &[&str], env: &[(&str, &str)]) -> Cargo {
    cargo_on(BARE, args, env)
}

/// [`cargo_bare`] for the bare-metal `target` ([`BARE`] or [`AARCH64`]).
pub fn cargo_on(target: &str, args: &[&str], env: &[(&str, &str)]) -> Cargo {
    let output = Command::new(env!("CARGO"))
        .args(args)
        .args(["--target", target])
        .current_dir(workspace())
        .env("UNIKERNEL_ACCEL", "tcg")
        .envs(env.iter().copied())
        .output()
        .expect("run cargo");
    let text = |bytes| String::from_utf8_lossy(bytes).replace('\r', "");
    Cargo { ok: output.status.success(), stdout: text(&output.stdout), stderr: text(&output.stderr) }
}

/// The bare-metal image of test target `test` of `package`, built.
pub fn test_image(package: &str, test: &str) -> Vec<u8> {
    let built = cargo_bare(&["test", "--no-run", "-p", package, "--test", test, "--message-format=json"], &[]);
    assert!(built.ok, "{}", built.stderr);
    let line =
        built.stdout.lines().find(|l| l.contains(&format!("\"name\":\"{test}\"")) && l.contains("\"executable\":\""));
    let path = line.and_then(|l| l.split("\"executable\":\"").nth(1)?.split('"').next()).expect("the image's path");
    std::fs::read(path).expect("read the image")
}

/// Symbols of `image` from crate `krate` (legacy mangling: length, name).
pub fn symbols_of(image: &[u8], krate: &str) -> Vec<String> {
    let file = object::File::parse(image).expect("ELF");
    let mangled = format!("{}{krate}", krate.len());
    file.symbols().filter_map(|s| s.name().ok().map(str::to_owned)).filter(|n| n.contains(&mangled)).collect()
}

/// The records `image` holds for the runner.
pub fn records(image: &[u8]) -> Vec<Record> {
    let file = object::File::parse(image).expect("ELF");
    let section = file.section_by_name(vmm::SECTION).expect("the .unikernel.vmm section");
    vmm::parse(section.data().expect("section data")).expect("well-formed records")
}

/// The virtio devices `image` asks for, as (device id, required).
pub fn virtio_devices(image: &[u8]) -> Vec<(u16, bool)> {
    let virtio = records(image).into_iter().filter(|r| r.kind == Kind::Virtio);
    virtio.map(|r| (r.device, r.is_required())).collect()
}
