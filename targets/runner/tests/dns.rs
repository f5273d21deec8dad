//! The `dns` example against real clients: `dig` (Debian's
//! `bind9-dnsutils`) over UDP and TCP through QEMU's user networking, and
//! malformed queries over both, after which it still answers `dig`.

mod common;

use common::dig::{dig, section};
use common::guest::{Guest, free_port};
use common::{BARE, examples, qemu_words};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

/// Boots `dns` with both forwards on a free host port.
fn start() -> (Guest, u16) {
    let port = free_port();
    let mut guest =
        Guest::start(&[], "dns", &["--forward", &format!("udp:{port}:53"), "--forward", &format!("tcp:{port}:53")]);
    guest.wait_for("dns: serving");
    (guest, port)
}

#[test]
fn the_image_forwards_host_port_5353_over_udp_and_tcp_by_default() {
    let words = qemu_words(&examples(BARE).join("dns"), &[]);
    let netdev = words.windows(2).find(|w| w[0] == "-netdev").map(|w| w[1].clone());
    assert_eq!(netdev.as_deref(), Some("user,id=net0,hostfwd=udp:127.0.0.1:5353-:53,hostfwd=tcp:127.0.0.1:5353-:53"));
}

#[test]
fn dig_gets_authoritative_answers_over_udp_and_tcp() {
    let (_guest, port) = start();
    for transport in ["+notcp", "+tcp"] {
        let out = dig(port, &[transport, "www.example.test", "A"]);
        assert!(out.contains("status: NOERROR") && out.contains(";; flags: qr aa rd;"), "{out}");
        assert_eq!(section(&out, "ANSWER"), ["www.example.test.\t3600\tIN\tA\t192.0.2.80"], "{out}");
        let proto = if transport == "+tcp" { "(TCP)" } else { "(UDP)" };
        assert!(out.contains(proto), "{out}");
    }
    let out = dig(port, &["mail.example.test", "AAAA"]);
    assert_eq!(section(&out, "ANSWER"), ["mail.example.test.\t3600\tIN\tAAAA\t2001:db8::25"], "{out}");
    let out = dig(port, &["example.test", "MX"]);
    assert_eq!(section(&out, "ANSWER"), ["example.test.\t\t3600\tIN\tMX\t10 mail.example.test."], "{out}");
    // A CNAME chain is followed inside the zone.
    let out = dig(port, &["alias.example.test", "A"]);
    assert_eq!(
        section(&out, "ANSWER"),
        [
            "alias.example.test.\t3600\tIN\tCNAME\tftp.example.test.",
            "ftp.example.test.\t3600\tIN\tCNAME\twww.example.test.",
            "www.example.test.\t3600\tIN\tA\t192.0.2.80"
        ],
        "{out}"
    );
}

#[test]
fn negative_answers_refusals_and_truncation_reach_dig() {
    let (_guest, port) = start();
    let soa =
        "example.test.\t\t300\tIN\tSOA\tns1.example.test. hostmaster.example.test. 2026112801 7200 900 1209600 300";
    let out = dig(port, &["nope.example.test", "A"]);
    assert!(out.contains("status: NXDOMAIN") && out.contains(" aa"), "{out}");
    assert_eq!(section(&out, "AUTHORITY"), [soa], "{out}");
    // NODATA: the name exists, the type does not.
    let out = dig(port, &["www.example.test", "MX"]);
    assert!(out.contains("status: NOERROR") && out.contains("ANSWER: 0,"), "{out}");
    assert_eq!(section(&out, "AUTHORITY"), [soa], "{out}");
    let out = dig(port, &["www.example.org", "A"]);
    assert!(out.contains("status: REFUSED") && out.contains("ANSWER: 0,"), "{out}");
    // 1.6 KB of TXT: truncated over UDP (EDNS 1232), whole over TCP.
    let out = dig(port, &["big.example.test", "TXT"]);
    assert!(out.contains(";; Truncated, retrying in TCP mode."), "{out}");
    assert!(out.contains("(TCP)") && out.contains("status: NOERROR"), "{out}");
    let txt = section(&out, "ANSWER");
    assert_eq!(txt.len(), 1, "{out}");
    assert_eq!(txt[0].matches("\" \"").count(), 7, "all eight strings: {out}");
    // Over 512 bytes fits in EDNS's 1232, not without EDNS.
    assert!(!dig(port, &["mid.example.test", "TXT"]).contains("Truncated"));
    assert!(dig(port, &["+noedns", "mid.example.test", "TXT"]).contains("Truncated, retrying in TCP mode."));
}

/// A query for www.example.test/A with this ID, as dig would send it.
fn query(id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend([1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend(b"\x03www\x07example\x04test\x00\x00\x01\x00\x01");
    q
}

/// Malformed queries and the response code each must get (`None`: none).
fn malformed() -> Vec<(&'static str, Vec<u8>, Option<u8>)> {
    let good = query(7);
    let with = |at: usize, value: u8| {
        let mut q = good.clone();
        q[at] = value;
        q
    };
    let header_then = |rest: &[u8]| [&good[..12], rest].concat();
    vec![
        ("truncated header", good[..7].to_vec(), None),
        ("a response", with(2, 0x81), None),
        ("qdcount=0", with(5, 0), Some(1)),
        ("qdcount=2", with(5, 2), Some(1)),
        ("question cut short", good[..good.len() - 3].to_vec(), Some(1)),
        ("compression pointer to itself", header_then(&[0xc0, 12, 0, 1, 0, 1]), Some(1)),
        ("compression pointers in a loop", header_then(&[1, b'a', 0xc0, 12, 0, 1, 0, 1]), Some(1)),
        ("pointer past the end", header_then(&[0xc0, 0xff, 0, 1, 0, 1]), Some(1)),
        ("label past the end", header_then(&[63, b'a', b'b', 0, 1]), Some(1)),
        ("reserved label type", header_then(&[0x80, 0, 0, 1, 0, 1]), Some(1)),
        (
            "name over 255 bytes",
            header_then(&[[&[63u8][..], &[b'a'; 63]].concat().repeat(5), vec![0, 0, 1, 0, 1]].concat()),
            Some(1),
        ),
        ("unknown opcode", with(2, 0x78), Some(4)),
    ]
}

/// Garbage of every length up to 600 bytes, from a fixed seed.
fn garbage() -> impl Iterator<Item = Vec<u8>> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..600).map(move |len| {
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    })
}

#[test]
fn malformed_queries_get_formerr_or_nothing_and_the_server_keeps_answering() {
    let (_guest, port) = start();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(("127.0.0.1", port)).unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0; 2048];
    for (what, bytes, rcode) in malformed() {
        udp.send(&bytes).unwrap();
        // A well-formed query after it: a response to the bad one, if any,
        // comes first.
        udp.send(&query(0xbeef)).unwrap();
        let n = udp.recv(&mut buf).unwrap();
        if let Some(rcode) = rcode {
            assert_eq!(&buf[..2], &bytes[..2], "{what}: the response to it comes first");
            assert_eq!(buf[3] & 0xf, rcode, "{what}");
            assert_eq!(buf[2] & 0x80, 0x80, "{what}: QR");
            assert_eq!(&buf[4..6], &[0, 0], "{what}: no question echoed");
            let n = udp.recv(&mut buf).unwrap();
            assert_eq!(&buf[..2], &0xbeef_u16.to_be_bytes(), "{what}: then the good one's");
            assert!(n > 12);
        } else {
            assert_eq!(&buf[..2], &0xbeef_u16.to_be_bytes(), "{what}: no response to it");
            assert!(n > 12);
        }
    }
    for bytes in garbage() {
        udp.send(&bytes).unwrap();
    }
    // Over TCP: each malformed query on the connection that sent it.
    for (what, bytes, rcode) in malformed() {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        conn.write_all(&[(bytes.len() >> 8) as u8, bytes.len() as u8]).unwrap();
        conn.write_all(&bytes).unwrap();
        let mut reply = Vec::new();
        match rcode {
            Some(rcode) => {
                let mut len = [0; 2];
                conn.read_exact(&mut len).unwrap_or_else(|e| panic!("{what}: {e}"));
                reply.resize(usize::from(u16::from_be_bytes(len)), 0);
                conn.read_exact(&mut reply).unwrap();
                assert_eq!((&reply[..2], reply[3] & 0xf), (&bytes[..2], rcode), "{what}");
            }
            // Closed: end of stream (or a reset), nothing written.
            None => assert!(matches!(conn.read_to_end(&mut reply), Ok(0) | Err(_)), "{what}: {reply:?}"),
        }
    }
    // A length prefix far over the limit, a message cut short, garbage.
    let mut huge = TcpStream::connect(("127.0.0.1", port)).unwrap();
    huge.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    huge.write_all(&[0xff, 0xff, 1, 2, 3]).unwrap();
    let mut rest = Vec::new();
    assert!(matches!(huge.read_to_end(&mut rest), Ok(0) | Err(_)), "closed at once: {rest:?}");
    let mut cut = TcpStream::connect(("127.0.0.1", port)).unwrap();
    cut.write_all(&[0, 40]).unwrap();
    cut.write_all(&query(1)[..20]).unwrap();
    drop(cut);
    for bytes in garbage().step_by(50) {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = conn.write_all(&bytes);
    }
    // Still serving, both ways.
    for transport in ["+notcp", "+tcp"] {
        let out = dig(port, &[transport, "www.example.test", "A"]);
        assert_eq!(section(&out, "ANSWER"), ["www.example.test.\t3600\tIN\tA\t192.0.2.80"], "{out}");
    }
}

#[test]
fn a_silent_tcp_client_is_closed_by_the_deadline() {
    let (_guest, port) = start();
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // A guard against a hang, far above the server's 10 s deadline.
    idle.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut buf = [0; 1];
    assert!(matches!(idle.read(&mut buf), Ok(0)), "the server closed it");
}
