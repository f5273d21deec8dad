//! The `virtio_rng` component in the guest: `entropy(source = "device")`
//! reads the virtio entropy device, through the handle and through
//! `getrandom` as libraries call it. The host test `qemu.rs` boots this
//! image on a CPU without RDRAND.
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::Error;
use unikernel::component::{Handle, linked};
use unikernel_entropy::{Entropy, Source};

unikernel::test_main!(unikernel_virtio_rng::virtio_rng, unikernel_entropy::entropy(source = "device"));

fn distinct_draws(fill: impl Fn(&mut [u8]) -> Result<(), Error>) -> Result<(), Error> {
    // Longer than one request of the device's queue, and odd-sized.
    let (mut a, mut b) = ([0u8; 4099], [0u8; 4099]);
    fill(&mut a)?;
    fill(&mut b)?;
    // Random bits repeating, or all zero, means a broken source.
    assert_ne!(a, b);
    assert!(a.iter().any(|&byte| byte != 0));
    Ok(())
}

#[unikernel::test]
fn the_image_contains_both_components() {
    assert!(linked("virtio_rng") && linked("entropy"));
}

#[unikernel::test]
fn the_handle_reads_the_device() -> Result<(), Error> {
    let rng = Entropy::take()?;
    assert_eq!(rng.source(), Source::Device);
    distinct_draws(|buf| rng.fill(buf))
}

#[unikernel::test]
fn getrandom_reads_the_device_for_libraries() -> Result<(), Error> {
    distinct_draws(|buf| getrandom::fill(buf).map_err(|_| Error::msg("getrandom failed")))
}
