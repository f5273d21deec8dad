//! The `capture` example with the capture on a virtio console of its own
//! (`unikernel_virtio_console::channel`, ~70x the serial console's
//! bytes per second) and the log on another (`virtio_console`).
//!
//! `cargo run --example capture_fast -- --pcap capture.pcap`; the log goes
//! to `.unikernel/capture_fast-console.log`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

#[path = "shared/capture.rs"]
mod shared;

use unikernel::prelude::*;
use unikernel_net::{Net, pcap};
use unikernel_virtio_console::{channel, virtio_console};

#[unikernel(pcap, channel, virtio_console)]
async fn main(net: Net) -> Result<(), Error> {
    shared::serve_captured(net, "capture_fast").await
}
