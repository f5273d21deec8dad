//! Sleeps, then exits: an idle unikernel halts the CPU instead of spinning,
//! so QEMU uses next to no host CPU meanwhile. `cargo run --example idle --
//! seconds=5`; the tests and `cargo xtask bench` measure that CPU use.
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;

#[unikernel]
async fn main() -> Result<(), Error> {
    let seconds: u64 = match unikernel::cmdline::value("seconds") {
        Some(s) => s.parse().map_err(|_| Error::msg("seconds=N takes a whole number"))?,
        None => 3,
    };
    let start = Instant::now();
    sleep(Duration::from_secs(seconds)).await;
    unikernel::println!("slept {:?}", start.elapsed());
    Ok(())
}
