//! The DNS server's query path (`unikernel_dns::respond`) over the `dns`
//! example's zone: arbitrary bytes as a query, over UDP and TCP.

use crate::Target;
use domain::base::Message;
use std::sync::LazyLock;
use unikernel_dns::{PLAIN_UDP, Transport, Zone, respond, zone};

/// The fuzz targets of this module, by the names `fuzz/Cargo.toml` gives them.
pub const TARGETS: &[Target] = &[("dns_query", query)];

static ZONE: LazyLock<Zone> =
    LazyLock::new(|| Zone::new(zone!("../../examples/dns/example.test.zone")).expect("the example zone"));

/// The first byte picks the server's EDNS size (0: 512 bytes, so no more
/// than without EDNS), the rest is the query. Whatever it is: no panic; no
/// answer to less than a header or to a response; otherwise a response
/// that parses whole, with the query's ID and QR set, within the size the
/// transport allows.
pub fn query(data: &[u8]) {
    let Some((&size, query)) = data.split_first() else { return };
    let max_udp_payload = (PLAIN_UDP as u16).saturating_add(u16::from(size) * 8);
    for transport in [Transport::Udp, Transport::Tcp] {
        let response = respond(&ZONE, query, transport, max_udp_payload);
        let silent = query.len() < 12 || query[2] & 0x80 != 0;
        let Some(response) = response else {
            assert!(silent, "a query with a header and QR clear gets an answer");
            continue;
        };
        assert!(!silent, "no answer to a response or to less than a header");
        if transport == Transport::Udp {
            assert!(response.len() <= usize::from(max_udp_payload), "{} bytes over UDP", response.len());
        }
        let msg = Message::from_octets(response).expect("a header");
        assert!(msg.header().qr());
        assert_eq!(msg.header().id(), u16::from_be_bytes([query[0], query[1]]));
        for record in msg.answer().expect("a question section that parses") {
            record.expect("answer records that parse");
        }
        let mut sections = msg.authority().expect("an answer section that parses");
        for record in sections.by_ref() {
            record.expect("authority records that parse");
        }
        for record in sections.next_section().expect("ok").expect("an additional section") {
            record.expect("additional records that parse");
        }
    }
}
