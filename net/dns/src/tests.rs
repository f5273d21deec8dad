use crate::{Transport, Zone, respond, zone};
use domain::base::Message;
use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::message_builder::MessageBuilder;
use domain::base::name::Name;

const UDP: Transport = Transport::Udp;

fn zone() -> Zone {
    Zone::new(zone!("../../examples/dns/example.test.zone")).unwrap()
}

/// A query for `name`/`qtype`, with an EDNS OPT record of `edns` bytes.
fn query(name: &str, qtype: Rtype, edns: Option<u16>) -> Vec<u8> {
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_id(0x1234);
    b.header_mut().set_rd(true);
    let mut q = b.question();
    q.push((name.parse::<Name<Vec<u8>>>().unwrap(), qtype)).unwrap();
    let mut additional = q.additional();
    if let Some(size) = edns {
        additional
            .opt(|opt| {
                opt.set_udp_payload_size(size);
                Ok(())
            })
            .unwrap();
    }
    additional.finish()
}

fn ask(zone: &Zone, name: &str, qtype: Rtype, transport: Transport) -> Message<Vec<u8>> {
    let response = respond(zone, &query(name, qtype, None), transport, 1232).expect("an answer");
    Message::from_octets(response).unwrap()
}

/// (owner, type) of each record in a section.
fn names(section: domain::base::message::RecordSection<'_, Vec<u8>>) -> Vec<(String, Rtype)> {
    section.map(|r| r.unwrap()).map(|r| (r.owner().to_string(), r.rtype())).collect()
}

#[test]
fn answers_from_the_zone_with_the_aa_bit() {
    let zone = zone();
    let msg = ask(&zone, "www.example.test.", Rtype::A, UDP);
    let h = msg.header();
    assert!(h.qr() && h.aa() && h.rd() && !h.tc());
    assert_eq!((h.id(), h.rcode()), (0x1234, Rcode::NOERROR));
    let answer: Vec<_> = msg.answer().unwrap().limit_to::<domain::rdata::A>().map(|r| r.unwrap()).collect();
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].data().addr(), core::net::Ipv4Addr::new(192, 0, 2, 80));
    // The question is echoed.
    let question = msg.sole_question().unwrap();
    assert_eq!((question.qname().to_string().as_str(), question.qtype()), ("www.example.test", Rtype::A));
    for (name, qtype, count) in [
        ("example.test.", Rtype::NS, 2),
        ("example.test.", Rtype::MX, 1),
        ("example.test.", Rtype::TXT, 1),
        ("mail.example.test.", Rtype::AAAA, 1),
        ("www.example.test.", Rtype::ANY, 2),
        ("WwW.ExAmPlE.tEsT.", Rtype::AAAA, 1),
    ] {
        let msg = ask(&zone, name, qtype, UDP);
        assert_eq!(msg.header_counts().ancount(), count, "{name} {qtype}");
        assert_eq!(msg.header().rcode(), Rcode::NOERROR);
    }
}

#[test]
fn cnames_are_followed_within_the_zone_and_stop_at_its_edge_and_at_loops() {
    let zone = zone();
    let msg = ask(&zone, "alias.example.test.", Rtype::A, UDP);
    assert_eq!(
        names(msg.answer().unwrap()),
        [
            ("alias.example.test".into(), Rtype::CNAME),
            ("ftp.example.test".into(), Rtype::CNAME),
            ("www.example.test".into(), Rtype::A)
        ]
    );
    // Asking for the CNAME itself does not follow it.
    assert_eq!(names(ask(&zone, "ftp.example.test.", Rtype::CNAME, UDP).answer().unwrap()).len(), 1);
    let msg = ask(&zone, "outside.example.test.", Rtype::A, UDP);
    assert_eq!(names(msg.answer().unwrap()), [("outside.example.test".into(), Rtype::CNAME)]);
    assert_eq!(msg.header().rcode(), Rcode::NOERROR);
    let msg = ask(&zone, "loop1.example.test.", Rtype::A, UDP);
    assert_eq!(msg.header_counts().ancount(), 8, "stops after MAX_CHAIN records");
}

#[test]
fn negative_answers_carry_the_soa_with_the_negative_ttl() {
    let zone = zone();
    for (name, qtype, rcode) in [
        ("nope.example.test.", Rtype::A, Rcode::NXDOMAIN),
        ("www.example.test.", Rtype::MX, Rcode::NOERROR),
        // An empty non-terminal exists (RFC 8020).
        ("b.c.example.test.", Rtype::A, Rcode::NOERROR),
    ] {
        let msg = ask(&zone, name, qtype, UDP);
        assert!(msg.header().aa());
        assert_eq!(msg.header().rcode(), rcode, "{name}");
        assert_eq!(msg.header_counts().ancount(), 0, "{name}");
        let soa: Vec<_> = msg.authority().unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(soa.len(), 1);
        assert_eq!((soa[0].owner().to_string().as_str(), soa[0].rtype()), ("example.test", Rtype::SOA));
        assert_eq!(soa[0].ttl().as_secs(), 300, "the SOA's MINIMUM, below its TTL of 3600");
    }
}

#[test]
fn other_zones_and_classes_are_refused() {
    let zone = zone();
    for name in ["www.example.org.", "test.", ".", "example.test.example.org."] {
        let msg = ask(&zone, name, Rtype::A, UDP);
        assert_eq!(msg.header().rcode(), Rcode::REFUSED, "{name}");
        assert!(!msg.header().aa() && msg.header_counts().ancount() == 0);
    }
    let mut chaos = query("www.example.test.", Rtype::A, None);
    let at = chaos.len() - 2;
    chaos[at..].copy_from_slice(&Class::CH.to_int().to_be_bytes());
    let msg = Message::from_octets(respond(&zone, &chaos, UDP, 1232).unwrap()).unwrap();
    assert_eq!(msg.header().rcode(), Rcode::REFUSED);
}

#[test]
fn large_answers_are_truncated_over_udp_and_whole_over_tcp() {
    let zone = zone();
    for (edns, limit) in [(None, 512), (Some(1232), 1232), (Some(4096), 1232), (Some(100), 512)] {
        let response = respond(&zone, &query("big.example.test.", Rtype::TXT, edns), UDP, 1232).unwrap();
        assert!(response.len() <= limit, "{edns:?}: {}", response.len());
        let msg = Message::from_octets(response).unwrap();
        assert!(msg.header().tc(), "{edns:?}");
        assert_eq!(msg.header_counts().ancount(), 0);
        assert_eq!(msg.opt().is_some(), edns.is_some(), "OPT echoed with EDNS");
    }
    let whole = ask(&zone, "big.example.test.", Rtype::TXT, Transport::Tcp);
    assert!(!whole.header().tc());
    assert_eq!(whole.header_counts().ancount(), 1);
    assert!(whole.as_slice().len() > 1600);
    // Over 512 bytes, under the EDNS size: whole with EDNS only.
    let mid = respond(&zone, &query("mid.example.test.", Rtype::TXT, Some(1232)), UDP, 1232).unwrap();
    assert!(mid.len() > 512);
    assert!(!Message::from_octets(mid).unwrap().header().tc());
    assert!(ask(&zone, "mid.example.test.", Rtype::TXT, UDP).header().tc());
}

#[test]
fn malformed_queries_get_formerr_or_nothing() {
    let zone = zone();
    let good = query("www.example.test.", Rtype::A, None);
    let formerr = |bytes: &[u8]| {
        let msg = Message::from_octets(respond(&zone, bytes, UDP, 1232).expect("an answer")).unwrap();
        assert_eq!(msg.header().id(), 0x1234);
        (msg.header().rcode(), msg.header_counts().qdcount())
    };
    // Shorter than a header, or a response: nothing.
    assert!(respond(&zone, &good[..11], UDP, 1232).is_none());
    assert!(respond(&zone, &[], UDP, 1232).is_none());
    let mut response = good.clone();
    response[2] |= 0x80;
    assert!(respond(&zone, &response, UDP, 1232).is_none());
    // No question, two questions, a truncated question.
    let mut none = good[..12].to_vec();
    none[5] = 0;
    assert_eq!(formerr(&none), (Rcode::FORMERR, 0));
    let mut two = good.clone();
    two[5] = 2;
    assert_eq!(formerr(&two), (Rcode::FORMERR, 0));
    assert_eq!(formerr(&good[..good.len() - 3]), (Rcode::FORMERR, 0));
    // A compression pointer to itself, and one forward past the end.
    let mut looped = good[..12].to_vec();
    looped.extend([0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(formerr(&looped), (Rcode::FORMERR, 0));
    let mut forward = good[..12].to_vec();
    forward.extend([0xc0, 200, 0, 1, 0, 1]);
    assert_eq!(formerr(&forward), (Rcode::FORMERR, 0));
    // A label longer than the message.
    let mut overrun = good[..12].to_vec();
    overrun.extend([63, b'a', b'b']);
    assert_eq!(formerr(&overrun), (Rcode::FORMERR, 0));
    // Another opcode (NOTIFY).
    let mut notify = good.clone();
    notify[2] |= Opcode::NOTIFY.to_int() << 3;
    assert_eq!(formerr(&notify).0, Rcode::NOTIMP);
}

#[test]
fn zone_bytes_that_are_not_a_compiled_zone_are_refused() {
    let wire: &'static [u8] = zone!("../../examples/dns/example.test.zone");
    assert!(Zone::new(&wire[..wire.len() - 1]).is_err(), "cut short");
    assert!(Zone::new(&wire[wire.len() / 2..]).is_err());
    assert!(Zone::new(b"").is_err(), "no SOA");
    // A record of another zone (after the SOA) is refused.
    let mut other = wire.to_vec();
    other.extend(b"\x03www\x07example\x03org\x00\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01");
    assert!(Zone::new(other.leak()).is_err());
    let zone = Zone::new(wire).unwrap();
    assert_eq!(zone.apex().to_string(), "example.test");
    assert_eq!(zone.record_count(), 20, "the records in the file");
}
