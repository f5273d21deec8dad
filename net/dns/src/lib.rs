//! An authoritative DNS server for unikernels.
//!
//! The zone is an RFC 1035 master file that [`zone!`] reads while the
//! image compiles (with NLnet Labs' `domain` scanner, on the build host):
//! the image carries its records in wire format and no parser, and a zone
//! the server could not serve is a compile error. Or a master file is read
//! at run time, e.g. from a disk ([`disk::read_zone`]), by the strict,
//! bounded reader in [`master`], linked only into images that call it.
//! [`Zone::new`] indexes the records at boot, [`respond`] answers one
//! query (pure, no I/O: the host tests and the fuzzer drive it), and
//! [`Server`] answers over UDP and TCP on `unikernel-net` within
//! [`Limits`].
//!
//! What it answers: records of the zone with the AA bit; CNAMEs followed
//! within the zone; NXDOMAIN and NODATA with the SOA in the authority
//! section; REFUSED for other zones and classes; FORMERR for a query
//! without exactly one readable question; NOTIMP for other opcodes; TC
//! when the answer exceeds 512 bytes over UDP (or the EDNS size, up to
//! [`Limits::max_udp_payload`]), so the client asks again over TCP.
//! Messages shorter than a header, and responses, get no answer.
//!
//! ```no_run
//! # async fn run(net: unikernel_net::Net) -> Result<(), unikernel_net::NetError> {
//! use unikernel_dns::{Limits, Server, Zone, zone};
//! let zone = Zone::new(zone!("../../examples/dns/example.test.zone")).expect("checked by zone!");
//! Server::bind(net, 53, zone, Limits::default()).await?.run().await
//! # }
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod answer;
pub mod disk;
pub mod master;
mod serve;
#[cfg(test)]
mod tests;
mod zone;

pub use answer::{MAX_MESSAGE, PLAIN_UDP, Transport, respond};
pub use master::{MasterFileError, ZoneLimits};
pub use serve::{Limits, Server};
pub use unikernel_dns_macros::zone;
pub use zone::{Zone, ZoneError};
