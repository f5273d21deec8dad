#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_virtio_console::virtio_console;

#[unikernel(virtio_console, log = "debug")]
fn main() {
    assert!(unikernel::component::linked("virtio_console"));
    unikernel::println!("to the console");
}
