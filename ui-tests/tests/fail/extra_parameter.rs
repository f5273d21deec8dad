#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;

#[unikernel]
fn main(_port: u16) {}
