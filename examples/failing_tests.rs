//! A test image with failures, to show how the in-guest harness reports
//! them: a test returning `Err` and a panicking one fail, and the tests after
//! them still run. The image exits non-zero.
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::Error;

unikernel::test_main!();

#[unikernel::test]
fn a_passes() {}

#[unikernel::test]
fn b_returns_an_error() -> Result<(), Error> {
    Err(Error::msg("expected failure"))
}

#[unikernel::test]
fn c_panics() {
    panic!("expected panic");
}

#[unikernel::test]
fn d_runs_after_a_panic() {
    assert_eq!(core::hint::black_box(2) + 2, 4);
}
