//! The `entropy` component in the guest: its handle and `getrandom`, which
//! libraries call, both draw from the CPU (bare metal) or the OS (hosted).
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::Error;
use unikernel::component::{Handle, linked};
use unikernel_entropy::Entropy;

unikernel::test_main!(unikernel_entropy::entropy);

fn distinct_draws(fill: impl Fn(&mut [u8; 32]) -> Result<(), Error>) -> Result<(), Error> {
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    fill(&mut a)?;
    fill(&mut b)?;
    // 256 random bits repeating, or all zero, means a broken source.
    assert_ne!(a, b);
    assert_ne!(a, [0; 32]);
    Ok(())
}

#[unikernel::test]
fn the_image_contains_the_component() {
    assert!(linked("entropy"));
    assert!(!linked("net"));
}

#[unikernel::test]
fn the_handle_gives_random_bytes() -> Result<(), Error> {
    let rng = Entropy::take()?;
    distinct_draws(|buf| rng.fill(buf))
}

#[unikernel::test]
fn getrandom_works_for_libraries() -> Result<(), Error> {
    distinct_draws(|buf| getrandom::fill(buf).map_err(|e| Error::msg(describe(e))))
}

fn describe(e: getrandom::Error) -> &'static str {
    if e == getrandom::Error::UNSUPPORTED { "getrandom: unsupported" } else { "getrandom failed" }
}
