//! The smallest unikernel: prints a greeting and exits 0.
//!
//! `cargo run --example hello` boots it in QEMU;
//! `cargo run --example hello --target x86_64-unknown-linux-gnu` runs it as
//! a Linux process.
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;

#[unikernel]
fn main() -> Result<(), Error> {
    let free_mib = unikernel::free_memory().unwrap_or(0) >> 20;
    println!("Hello from a unikernel! (cmdline: \"{}\", {free_mib} MiB free)", unikernel::cmdline::get());
    Ok(())
}
