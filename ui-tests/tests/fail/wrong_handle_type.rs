#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_entropy::entropy;

#[unikernel(entropy)]
fn main(rng: u64) {}
