#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;

// A handle may be ignored with `_`, and named by its full path.
#[unikernel(entropy)]
fn main(_: unikernel_entropy::Entropy) -> core::result::Result<(), &'static str> {
    Ok(())
}
