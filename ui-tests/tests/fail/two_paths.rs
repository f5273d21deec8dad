#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_entropy::entropy;

// One component through two paths: the macro cannot tell, the compiler can.
#[unikernel(entropy, unikernel_entropy::entropy(source = "rdseed"))]
fn main() {}
