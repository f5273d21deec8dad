//! Both components of the crate in one image: the log on one virtio
//! console, the host channel on another. The host test `qemu.rs` boots
//! this image and finds the records, and no channel line, in the log file.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use unikernel_core::channel::{self, stream};

unikernel::test_main!(unikernel_virtio_console::channel, unikernel_virtio_console::virtio_console);

#[unikernel::test]
fn the_log_and_the_channel_each_have_their_console() {
    assert!(unikernel::component::linked("channel") && unikernel::component::linked("virtio_console"));
    #[cfg(target_os = "none")]
    assert!(!channel::set_transport(|_| false), "the component carries the channel");
    log::warn!("a record beside the channel");
    channel::send(stream::DISCARD, &[7; 3 * channel::CHUNK]);
    log::warn!("a record after the channel's lines");
}
