//! Puts `unikernel.ld` on the linker's search path, cortex-m-rt style: an
//! application only adds `-C link-arg=-Tunikernel.ld` to its rustflags.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("unikernel.ld", out.join("unikernel.ld")).expect("copy unikernel.ld");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=unikernel.ld");
}
