#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;

#[unikernel(heap_size = "32K")]
fn main() {}
