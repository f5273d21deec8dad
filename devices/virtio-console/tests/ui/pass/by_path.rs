#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;

#[unikernel(unikernel_virtio_console::virtio_console())]
fn main() {}
