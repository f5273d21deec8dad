#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;

// A component may be named without taking its handle: it starts all the same.
#[unikernel(unikernel_entropy::entropy)]
fn main() {
    assert!(unikernel::component::linked("entropy"));
}
