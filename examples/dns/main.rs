//! An authoritative DNS server for `example.test.`, the zone in
//! `example.test.zone` beside this file, compiled into the image.
//!
//! `cargo run --example dns`, then `dig @127.0.0.1 -p 5353 www.example.test`
//! (UDP) or with `+tcp`: the image asks for both forwards of host port
//! 5353 to the guest's port 53, which `--forward` replaces.
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;
use unikernel_dns::{Limits, Server, Zone, zone};
use unikernel_net::Net;

const PORT: u16 = 53;

#[unikernel(forward = "udp:5353:53, tcp:5353:53")]
async fn main(net: Net) -> Result<(), Error> {
    let zone = Zone::new(zone!("examples/dns/example.test.zone"))?;
    let (ip, len) = net.configured().await;
    let (apex, records) = (zone.apex().clone(), zone.record_count());
    let server = Server::bind(net, PORT, zone, Limits::default()).await?;
    unikernel::println!("dns: serving {apex} ({records} records) on {ip}/{len} port {PORT} (UDP and TCP)");
    server.run().await?;
    Ok(())
}
