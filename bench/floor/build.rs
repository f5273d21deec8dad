//! Provides this kernel's own `unikernel.ld` (the workspace's rustflags
//! name that script for every bare-metal build).
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let script = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("aarch64") => "floor-aarch64.ld",
        _ => "floor.ld",
    };
    fs::copy(script, out.join("unikernel.ld")).unwrap_or_else(|e| panic!("copy {script}: {e}"));
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={script}");
}
