use super::compile;

const HEAD: &str = "$ORIGIN example.test.\n$TTL 60\n@ IN SOA ns1 hostmaster 1 2 3 4 5\n";

/// (owner, type, rdata) of each record, read back from the wire format.
fn records(mut wire: &[u8]) -> Vec<(String, u16, Vec<u8>)> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let mut owner = String::new();
        while wire[0] != 0 {
            let len = usize::from(wire[0]);
            owner += std::str::from_utf8(&wire[1..=len]).unwrap();
            owner += ".";
            wire = &wire[len + 1..];
        }
        let rtype = u16::from_be_bytes([wire[1], wire[2]]);
        assert_eq!(&wire[3..5], &[0, 1], "class IN");
        let len = usize::from(u16::from_be_bytes([wire[9], wire[10]]));
        out.push((owner, rtype, wire[11..11 + len].to_vec()));
        wire = &wire[11 + len..];
    }
    out
}

#[test]
fn the_example_zone_compiles_with_its_soa_first() {
    let text = include_str!("../../../../examples/dns/example.test.zone");
    let records = records(&compile(text).unwrap());
    assert_eq!(records[0].0, "example.test.");
    assert_eq!(records[0].1, 6, "SOA first");
    assert_eq!(records.iter().filter(|r| r.1 == 6).count(), 1);
    for rtype in [1, 2, 5, 15, 16, 28] {
        assert!(records.iter().any(|r| r.1 == rtype), "type {rtype} present");
    }
    let big = records.iter().find(|r| r.0 == "big.example.test.").unwrap();
    assert!(big.2.len() > 1500, "the large TXT record: {}", big.2.len());
}

#[test]
fn relative_names_are_completed_with_the_origin() {
    let wire = compile(&format!("{HEAD}ftp IN CNAME www\nmail IN MX 10 mx.other.\n")).unwrap();
    let records = records(&wire);
    assert_eq!(records[1], ("ftp.example.test.".into(), 5, b"\x03www\x07example\x04test\x00".to_vec()));
    assert_eq!(records[2].2, b"\x00\x0a\x02mx\x05other\x00");
    // The SOA's names too: mname and rname come first in its data.
    assert!(records[0].2.starts_with(b"\x03ns1\x07example\x04test\x00\x0ahostmaster"));
}

#[test]
fn zones_the_server_could_not_serve_are_refused() {
    for (text, error) in [
        ("$ORIGIN example.test.\nwww 60 IN A 192.0.2.1\n".to_string(), "no SOA"),
        (format!("{HEAD}@ IN SOA a b 1 2 3 4 5\n"), "more than one SOA"),
        (format!("{HEAD}www.example.org. IN A 192.0.2.1\n"), "outside the zone"),
        ("$ORIGIN example.test.\n@ 60 CH SOA ns1 hostmaster 1 2 3 4 5\n".to_string(), "only IN"),
        (format!("{HEAD}www CH A 192.0.2.1\n"), "different class"),
        (format!("{HEAD}$INCLUDE other.zone\n"), "$INCLUDE"),
        (format!("{HEAD}www IN A 192.0.2\n"), "expected IPv4 address"),
    ] {
        let got = compile(&text).expect_err(&text);
        assert!(got.contains(error), "{text:?}: {got}");
    }
}
