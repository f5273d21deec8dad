//! Provides this kernel's own `unikernel.ld` (the workspace's rustflags
//! name that script for every bare-metal build).
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("floor.ld", out.join("unikernel.ld")).expect("copy floor.ld");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=floor.ld");
}
