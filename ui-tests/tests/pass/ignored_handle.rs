#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;

// A handle may be ignored with `_`, and its component named by its full path.
#[unikernel(unikernel_entropy::entropy)]
fn main(_: unikernel_entropy::Entropy) -> core::result::Result<(), &'static str> {
    Ok(())
}
