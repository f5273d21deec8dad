//! Packet capture: a one-page HTTP server whose every frame, sent and
//! received, goes to a pcap file through `unikernel_net::pcap`.
//!
//! `cargo run --example capture -- --pcap capture.pcap`, then
//! `curl http://127.0.0.1:8080/`, stop it (Ctrl-C) and read the exchange
//! with `tcpdump -nr capture.pcap` or Wireshark. Without `--pcap` the
//! capture goes to `.unikernel/capture.pcap`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

#[path = "shared/capture.rs"]
mod shared;

use unikernel::prelude::*;
use unikernel_net::{Net, pcap};

#[unikernel(pcap)]
async fn main(net: Net) -> Result<(), Error> {
    shared::serve_captured(net, "capture").await
}
