#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_entropy::{Entropy, entropy};

#[unikernel(entropy(source: "rdseed"))]
fn main(_rng: Entropy) {}
