// The example at the top of the README, verbatim.
#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_entropy::Entropy;

#[unikernel(log = "info")]
async fn main(rng: Entropy) -> Result<(), Error> {
    let start = Instant::now();
    let a = spawn(async { sleep(Duration::from_millis(50)).await; 1 });
    let b = spawn(async { sleep(Duration::from_millis(20)).await; 2 });
    let (a, b) = (a.await, b.await);
    unikernel::println!("{a} {b} after {:?}, wall clock {}, dice {}", start.elapsed(), SystemTime::now(), rng.u64()? % 6 + 1);
    Ok(())
}
