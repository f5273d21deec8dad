#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_virtio_console::virtio_console;

#[unikernel(virtio_console(port = 1))]
fn main() {}
