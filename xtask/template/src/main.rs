//! `cargo run` boots this unikernel in QEMU; `cargo run --target
//! x86_64-unknown-linux-gnu` runs it as a Linux process; `cargo run
//! --release` makes the small image.
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;

// Name components here, e.g. #[unikernel(net, block)], and take their
// handles as arguments: async fn main(net: Net, disk: Block).
#[unikernel(log = "info")]
async fn main() -> Result<(), Error> {
    let started = Instant::now();
    sleep(Duration::from_millis(10)).await;
    let greeting = {{crate}}::greeting(env!("CARGO_PKG_NAME"));
    unikernel::println!("{greeting} (slept 10 ms, woke after {:?})", started.elapsed());
    Ok(())
}
