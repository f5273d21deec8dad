#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_entropy::{Entropy, Source, entropy};

#[unikernel(entropy(source = "rdseed"), log = "warn", stack_size = "1M", heap_size = "8M")]
fn main(rng: Entropy) -> Result<(), Error> {
    assert_eq!(rng.source(), Source::RdSeed);
    let mut buf = [0u8; 32];
    rng.fill(&mut buf)?;
    assert!(buf.iter().any(|&b| b != 0));
    Ok(())
}
