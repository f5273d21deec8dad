//! `cargo run` boots this unikernel in QEMU; `cargo run --target
//! x86_64-unknown-linux-gnu` runs it as a Linux process; `cargo run
//! --release` makes the small image.
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;

// A component starts when `main` takes its handle, e.g.
// `async fn main(net: Net, disk: Block)`, or when the attribute names it,
// with options: #[unikernel(net(ip = "10.0.2.15/24"))] after
// `use unikernel_net::{Net, net};`. Cargo.toml lists the crates.
#[unikernel(log = "info")]
async fn main() -> Result<(), Error> {
    let started = Instant::now();
    sleep(Duration::from_millis(10)).await;
    let greeting = {{crate}}::greeting(env!("CARGO_PKG_NAME"));
    unikernel::println!("{greeting} (slept 10 ms, woke after {:?})", started.elapsed());
    Ok(())
}
