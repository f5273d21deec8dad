//! The DNS server's query path (`unikernel_dns::respond`) over the `dns`
//! example's zone: arbitrary bytes as a query, over UDP and TCP; and the
//! master-file reader (`dns_disk`'s zone): arbitrary bytes as the disk's
//! text.

use crate::Target;
use domain::base::Message;
use domain::base::MessageBuilder;
use domain::base::iana::Rtype;
use domain::base::name::Name;
use std::sync::LazyLock;
use unikernel_dns::{PLAIN_UDP, Transport, Zone, ZoneLimits, master, respond, zone};

/// The fuzz targets of this module, by the names `fuzz/Cargo.toml` gives them.
pub const TARGETS: &[Target] = &[("dns_query", query), ("dns_zone", master_file)];

static ZONE: LazyLock<Zone> =
    LazyLock::new(|| Zone::new(zone!("../../examples/dns/example.test.zone")).expect("the example zone"));

/// Whatever the bytes: no panic, and either a refusal or a zone within
/// the limits that `Zone::new` indexes and whose apex (and a name under
/// it) gets an answer that parses whole over both transports.
pub fn master_file(text: &[u8]) {
    let limits = ZoneLimits { max_text: 64 * 1024, max_records: 1000, max_wire: 128 * 1024 };
    let Ok(wire) = master::compile(text, &limits) else { return };
    assert!(wire.len() <= limits.max_wire, "{} bytes of wire format", wire.len());
    let raw = Box::into_raw(wire.into_boxed_slice());
    // SAFETY: `raw` is a live box's, freed only below, after the zone
    // that borrows it is dropped.
    let zone = Zone::new(unsafe { &*raw }).expect("what compile writes, Zone::new indexes");
    assert!(zone.record_count() <= limits.max_records);
    let apex = zone.apex().as_slice();
    let under = Name::from_octets([&[1, b'x'][..], apex].concat()).ok();
    for name in [Name::from_octets(apex.to_vec()).ok(), under].into_iter().flatten() {
        for qtype in [Rtype::ANY, Rtype::SOA, Rtype::A, Rtype::MX] {
            let mut b = MessageBuilder::new_vec().question();
            b.push((&name, qtype)).unwrap();
            let q = b.finish();
            for transport in [Transport::Udp, Transport::Tcp] {
                query_parses(&zone, &q, transport);
            }
        }
    }
    drop(zone);
    // SAFETY: `raw` came from `Box::into_raw` above and nothing borrows
    // it any more: the zone that did is dropped.
    drop(unsafe { Box::from_raw(raw) });
}

/// The response to `q`, which must parse whole.
fn query_parses(zone: &Zone, q: &[u8], transport: Transport) {
    let response = respond(zone, q, transport, 1232).expect("a query gets an answer");
    let msg = Message::from_octets(response).expect("a header");
    let mut sections = msg.answer().expect("a question section that parses");
    for record in sections.by_ref() {
        record.expect("answer records that parse");
    }
    for record in sections.next_section().expect("ok").expect("an authority section") {
        record.expect("authority records that parse");
    }
}

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
