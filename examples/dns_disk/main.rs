//! An authoritative DNS server for the zone on the disk: a master file
//! (RFC 1035 §5), edited as text and read at boot, where `dns` compiles
//! its zone into the image. The disk is untrusted: a zone larger than the
//! limits (sized from the free memory) or one the server could not serve
//! is refused with the reason on the console, and the image exits
//! non-zero.
//!
//! `cargo run --example dns_disk -- --disk examples/dns_disk/other.test.zone`,
//! then `dig @127.0.0.1 -p 5353 www.other.test` (UDP) or with `+tcp`.
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;
use unikernel_dns::disk::read_zone;
use unikernel_dns::{Limits, Server, ZoneLimits};
use unikernel_net::Net;
use unikernel_storage::{Block, BlockDevice};

const PORT: u16 = 53;

#[unikernel(forward = "udp:5353:53, tcp:5353:53")]
async fn main(net: Net, disk: Block) -> Result<(), Error> {
    // A budget, not a guess: the target knows its free memory.
    let limits = ZoneLimits::within(unikernel::free_memory().unwrap_or(16 << 20));
    let zone = read_zone(disk.sectors(), disk.sector_size(), async |s, buf| disk.read(s, buf).await, &limits).await?;
    let (ip, len) = net.configured().await;
    let (apex, records) = (zone.apex().clone(), zone.record_count());
    let server = Server::bind(net, PORT, zone, Limits::default()).await?;
    unikernel::println!(
        "dns_disk: serving {apex} ({records} records) from the disk on {ip}/{len} port {PORT} (UDP and TCP)"
    );
    server.run().await?;
    Ok(())
}
