//! The host channel's throughput through each way out, in one run: the
//! same bytes sent on the channel's virtio console
//! (`unikernel_virtio_console::channel`), then on the serial console.
//!
//! `cargo run --release --example bench_channel -- mib=4` (4 MiB each way
//! by default). The runner takes the lines out of both consoles and drops
//! them ([`stream::DISCARD`]), so each figure includes its decoding.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec::Vec;
use unikernel::prelude::*;
use unikernel_core::channel::{self, stream};

/// Bytes per second of `send` carrying `bytes`, in KiB/s.
fn throughput(bytes: &[u8], send: fn(u16, &[u8])) -> u64 {
    let start = Instant::now();
    send(stream::DISCARD, bytes);
    let micros = start.elapsed().as_micros().max(1);
    u64::try_from(bytes.len() as u128 * 1_000_000 / 1024 / micros).unwrap_or(u64::MAX)
}

#[unikernel(unikernel_virtio_console::channel)]
fn main() {
    let mib = unikernel::cmdline::value("mib").and_then(|m| m.parse().ok()).unwrap_or(4usize);
    // A pattern a reader can check: byte i is i mod 251.
    let bytes: Vec<u8> = (0..mib << 20).map(|i| (i % 251) as u8).collect();
    let virtio = throughput(&bytes, channel::send);
    let serial = throughput(&bytes, channel::send_on_console);
    unikernel::println!(
        "bench_channel: {mib} MiB each way: virtio console {virtio} KiB/s, serial console {serial} KiB/s ({}x)",
        virtio / serial.max(1)
    );
}
