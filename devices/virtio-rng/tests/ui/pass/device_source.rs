#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_entropy::{Entropy, Source, entropy};
use unikernel_virtio_rng::virtio_rng;

#[unikernel(virtio_rng, entropy(source = "device"))]
fn main(rng: Entropy) -> Result<(), Error> {
    assert_eq!(rng.source(), Source::Device);
    assert_ne!(rng.u64()?, rng.u64()?);
    Ok(())
}
