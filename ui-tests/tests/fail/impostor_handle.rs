#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;

// Same name, different type: the type system catches what the macro cannot.
struct Entropy;

#[unikernel]
fn main(rng: Entropy) {}
