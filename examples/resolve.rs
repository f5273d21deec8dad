//! Resolves the names given as `name=...` on the command line with the
//! network's DNS server (from DHCP, or `dns=` with a static `ip=`) and
//! prints the addresses.
//!
//! `cargo run --example resolve -- name=example.com`
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;
use unikernel_net::Net;

#[unikernel(forward = "none")]
async fn main(net: Net) -> Result<(), Error> {
    let (ip, len) = net.configured().await;
    unikernel::println!("resolve: configured as {ip}/{len}");
    for name in unikernel::cmdline::get().split_whitespace().filter_map(|w| w.strip_prefix("name=")) {
        let addrs =
            timeout(Duration::from_secs(10), net.resolve(name)).await.map_err(|_| Error::msg("DNS timed out"))?;
        match addrs {
            Ok(addrs) => unikernel::println!("{name} -> {addrs:?}"),
            Err(e) => unikernel::println!("{name} -> error: {e}"),
        }
    }
    Ok(())
}
