//! Async `main`, spawned tasks, timers and the wall clock:
//! `cargo run --example timers` (bare metal) or with
//! `--target x86_64-unknown-linux-gnu` (hosted); same output.
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;

#[unikernel]
async fn main() -> Result<(), Error> {
    let start = Instant::now();
    let a = spawn(async {
        sleep(Duration::from_millis(50)).await;
        1
    });
    let b = spawn(async {
        sleep(Duration::from_millis(20)).await;
        2
    });
    let (a, b) = (a.await, b.await);
    unikernel::println!("{} {} after {:?}, wall clock {}", a, b, start.elapsed(), SystemTime::now());
    Ok(())
}
