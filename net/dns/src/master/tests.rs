use super::{ZoneLimits, compile};
use crate::{Transport, Zone, respond, zone};
use domain::base::iana::{Rcode, Rtype};
use domain::base::message_builder::MessageBuilder;
use domain::base::name::Name;
use domain::base::{Message, ParsedName};
use domain::rdata::AllRecordData;

fn read(text: &str) -> Result<Zone, String> {
    Zone::from_master_file(text.as_bytes(), &ZoneLimits::default()).map_err(|e| e.to_string())
}

/// The answer section of `name`/`qtype` from `zone`, as text, with the rcode.
fn ask(zone: &Zone, name: &str, qtype: Rtype) -> (Rcode, Vec<String>) {
    let mut b = MessageBuilder::new_vec().question();
    b.push((name.parse::<Name<Vec<u8>>>().unwrap(), qtype)).unwrap();
    let response = respond(zone, &b.finish(), Transport::Tcp, 1232).unwrap();
    let msg = Message::from_octets(response).unwrap();
    let answer = msg.answer().unwrap().limit_to::<AllRecordData<_, ParsedName<_>>>();
    (msg.header().rcode(), answer.map(|r| r.unwrap().data().to_string()).collect())
}

#[test]
fn the_example_zone_read_at_run_time_is_what_zone_compiles() {
    let text = include_str!("../../../../examples/dns/example.test.zone");
    let wire = compile(text.as_bytes(), &ZoneLimits::default()).unwrap();
    assert_eq!(wire, zone!("../../examples/dns/example.test.zone"), "the same bytes, SOA first");
}

/// A zone written with every form the reader accepts.
const OTHER: &str = "; another zone, every form\r
$ORIGIN other.test.\r
@ 600 IN SOA ns.other.test. admin ( 7 ; serial\r
    3600 600 86400 60 )\r
  IN 600 NS ns\r
  NS ns.elsewhere.example.\r
ns IN A 198.51.100.53\r
www A 198.51.100.80 ; the TTL stays 600\r
    AAAA 2001:db8:1::80\r
$TTL 120\r
txt TXT \"semi;colon\" \"quote\\\"d\" unquoted \"\\065\\066\"\r
mx MX 5 www\r
alias CNAME www\r
_sip._tcp SRV 1 2 5060 www\r
80.100 PTR www.other.test.\r
$ORIGIN sub\r
deep TXT \"under sub\"\r
";

#[test]
fn a_zone_in_every_accepted_form_is_answered() {
    let zone = read(OTHER).unwrap();
    assert_eq!(zone.apex().to_string(), "other.test");
    assert_eq!(zone.record_count(), 12);
    assert_eq!(ask(&zone, "www.other.test.", Rtype::A), (Rcode::NOERROR, vec!["198.51.100.80".into()]));
    assert_eq!(ask(&zone, "www.other.test.", Rtype::AAAA).1, ["2001:db8:1::80"]);
    assert_eq!(ask(&zone, "other.test.", Rtype::NS).1, ["ns.other.test.", "ns.elsewhere.example."]);
    assert_eq!(ask(&zone, "txt.other.test.", Rtype::TXT).1, [r#""semi;colon" "quote\"d" "unquoted" "AB""#]);
    assert_eq!(ask(&zone, "mx.other.test.", Rtype::MX).1, ["5 www.other.test."]);
    assert_eq!(ask(&zone, "alias.other.test.", Rtype::A).1, ["www.other.test.", "198.51.100.80"]);
    assert_eq!(ask(&zone, "_sip._tcp.other.test.", Rtype::SRV).1, ["1 2 5060 www.other.test"]);
    assert_eq!(ask(&zone, "80.100.other.test.", Rtype::PTR).1, ["www.other.test."]);
    assert_eq!(ask(&zone, "deep.sub.other.test.", Rtype::TXT).1, ["\"under sub\""]);
    let (rcode, soa) = ask(&zone, "other.test.", Rtype::SOA);
    assert_eq!((rcode, soa), (Rcode::NOERROR, vec!["ns.other.test. admin.other.test. 7 3600 600 86400 60".into()]));
    assert_eq!(ask(&zone, "nope.other.test.", Rtype::A).0, Rcode::NXDOMAIN);
    // TTLs: explicit, then the last explicit one, then $TTL.
    let ttl = |name: &str, qtype| {
        let mut b = MessageBuilder::new_vec().question();
        b.push((name.parse::<Name<Vec<u8>>>().unwrap(), qtype)).unwrap();
        let msg = Message::from_octets(respond(&zone, &b.finish(), Transport::Tcp, 1232).unwrap()).unwrap();
        msg.answer().unwrap().next().unwrap().unwrap().ttl().as_secs()
    };
    assert_eq!((ttl("www.other.test.", Rtype::AAAA), ttl("mx.other.test.", Rtype::MX)), (600, 120));
}

#[test]
fn damaged_master_files_are_refused_with_the_line_to_blame() {
    let soa = "$ORIGIN z.test.\n@ 60 IN SOA ns admin 1 2 3 4 5\n";
    let cases: &[(&str, &str)] = &[
        ("", "no SOA record"),
        ("$ORIGIN z.test.\nwww 60 A 192.0.2.1\n", "no SOA record"),
        (
            "www.z.test. 60 IN SOA ns.z.test. admin.z.test. 1 2 3 4 5\nwww 60 A 192.0.2.1\n",
            "line 2: a relative name and no $ORIGIN",
        ),
        ("$ORIGIN z.test.\n@ 60 IN SOA ns admin ( 1 2 3 4 5\n", "line 2: `(` never closed"),
        ("$ORIGIN z.test.\n@ 60 IN SOA ns admin ( 1 2 ( 3 4 5 ))\n", "line 2: nested parentheses"),
        ("$ORIGIN z.test.\n@ 60 IN SOA ns admin 1 2 3 4 5 )\n", "line 2: `)` without `(`"),
        ("$ORIGIN z.test.\n@ 60 IN SOA ns admin 1 2 3 4\n", "line 2: SOA data: unexpected end of entry"),
        ("$ORIGIN z.test.\n@ 60 IN SOA ns admin 1 2 3 4 5 6\n", "line 2: more data than the type takes"),
        ("$ORIGIN z.test.\n@ 60 CH SOA ns admin 1 2 3 4 5\n", "line 2: only class IN"),
        ("$INCLUDE other\n", "line 1: $INCLUDE is not supported"),
        ("$GENERATE 1-9 a$ A 1.2.3.$\n", "line 1: a directive takes one value"),
        ("$FOO bar\n", "line 1: unknown directive $FOO"),
        ("$TTL 1h\n", "line 1: $TTL is not a number"),
        ("  60 IN A 192.0.2.1\n", "line 1: no owner"),
        ("$ORIGIN z.test.\n@ IN SOA ns admin 1 2 3 4 5\n", "line 2: no TTL"),
        ("\"quoted\" 60 A 192.0.2.1\n", "line 1: a quoted owner"),
        ("a..b. 60 A 192.0.2.1\n", "line 1: an invalid domain name"),
    ];
    let more: &[(&str, &str)] = &[
        ("www 60 A 192.0.2.256\n", "line 3: A data: expected IPv4 address"),
        ("www 60 A\n", "line 3: A data: unexpected end of entry"),
        ("www 60 AAAA 192.0.2.1\n", "line 3: AAAA data"),
        ("www 60 MX mail\n", "line 3: MX data"),
        ("www 60 FOO x\n", "line 3: unknown type FOO"),
        ("www 60 HINFO a b\n", "line 3: type HINFO is not served"),
        ("www 60 TXT \"open\n", "line 3: a quoted string is not closed on its line"),
        ("www 60 TXT \"bad \\9 escape\"\n", "line 3: a bad escape sequence"),
        ("www 60 TXT a\u{1}b\n", "line 3: a control character"),
        ("www 60 TXT a\0b\n", "line 3: a control character"),
        ("www 60 TXT caf\u{e9}\n", "line 3: TXT data"),
        (&"www 60 TXT x\n".replace('x', &"x".repeat(256)), "line 3: TXT data"),
        (&"www 60 A 192.0.2.1\n".replace("www", &"a".repeat(64)), "line 3: an invalid domain name"),
        (&"www 60 CNAME x\n".replace('x', &["a"; 127].join(".")), "line 3: CNAME data: a domain name over 255 bytes"),
        ("www 4294967296 A 192.0.2.1\n", "line 3: unknown type 4294967296"),
        (&format!("www 60 TXT ({})\n", " x\n".repeat(4094)), "line 3: over 4096 tokens in one entry"),
        (&format!("{} 60 A 192.0.2.1\n", "a".repeat(100_000)), "line 3: a domain name over 255 bytes"),
        (&format!("www 60 NS {}\n", "a".repeat(100_000)), "line 3: NS data: a domain name over 255 bytes"),
        ("www.example.org. 60 A 192.0.2.1\n", "line 3: www.example.org is outside the zone z.test"),
        ("@ 60 SOA ns admin 1 2 3 4 5\n", "line 3: more than one SOA record"),
    ];
    let extra: Vec<(String, &str)> = more.iter().map(|&(rest, want)| (format!("{soa}{rest}"), want)).collect();
    for (text, want) in cases.iter().map(|&(t, w)| (t.to_string(), w)).chain(extra) {
        let got = read(&text).err().unwrap_or_else(|| panic!("accepted: {text:?}"));
        assert!(got.contains(want), "{text:?}: {got:?}, wanted {want:?}");
    }
    // 4,096 tokens in one entry are read.
    assert_eq!(read(&format!("{soa}www 60 TXT ({})\n", " x\n".repeat(4093))).unwrap().record_count(), 2);
    // A record outside the zone before the SOA, and bytes that are not UTF-8.
    let got = read("$ORIGIN z.test.\nwww.example.org. 60 A 192.0.2.1\n@ 60 SOA ns admin 1 2 3 4 5\n").unwrap_err();
    assert!(got.contains("line 3: www.example.org is outside the zone z.test"), "{got}");
    let got = Zone::from_master_file(b"$ORIGIN z.test.\n\xff\n", &ZoneLimits::default()).unwrap_err().to_string();
    assert_eq!(got, "line 2: not UTF-8 text");
}

#[test]
fn limits_are_refused_not_exceeded() {
    let soa = "$ORIGIN z.test.\n@ 60 IN SOA ns admin 1 2 3 4 5\n";
    let text = format!("{soa}{}", "www 60 A 192.0.2.1\n".repeat(9));
    let wire = compile(text.as_bytes(), &ZoneLimits::default()).unwrap();
    let fits = ZoneLimits { max_text: text.len(), max_records: 10, max_wire: wire.len() };
    assert_eq!(compile(text.as_bytes(), &fits).unwrap(), wire);
    for (limits, want) in [
        (ZoneLimits { max_text: text.len() - 1, ..fits }, format!("larger than {} bytes", text.len() - 1)),
        (ZoneLimits { max_records: 9, ..fits }, "line 11: more than 9 records".into()),
        (
            ZoneLimits { max_wire: wire.len() - 1, ..fits },
            format!("line 11: over {} bytes in wire format", wire.len() - 1),
        ),
    ] {
        assert_eq!(compile(text.as_bytes(), &limits).unwrap_err().to_string(), want);
    }
    // A relative name grows by its origin: the wire cap bounds that too.
    let long =
        format!("$ORIGIN {}.\n@ 60 SOA ns admin 1 2 3 4 5\n{}", ["a"; 120].join("."), "b 60 NS c\n".repeat(1000));
    let got = compile(long.as_bytes(), &ZoneLimits { max_wire: 64 * 1024, ..ZoneLimits::default() }).unwrap_err();
    assert!(got.to_string().contains("over 65536 bytes in wire format"), "{got}");
    // The same records with the SOA last: the owners held until it comes
    // count too, so the cap that fitted them is now exceeded.
    let late = format!("$ORIGIN z.test.\n{}@ 60 SOA ns admin 1 2 3 4 5\n", "www 60 A 192.0.2.1\n".repeat(9));
    assert_eq!(compile(late.as_bytes(), &ZoneLimits::default()).unwrap(), wire);
    let got = compile(late.as_bytes(), &fits).unwrap_err().to_string();
    assert!(got.ends_with(&format!("over {} bytes in wire format", wire.len())), "{got}");
    // Within a memory budget: a sixteenth each for text and index, an eighth for the wire.
    let small = ZoneLimits::within(1 << 20);
    assert_eq!((small.max_text, small.max_wire), (64 << 10, 128 << 10));
    assert_eq!(small.max_records, (64 << 10) / crate::zone::RECORD_SIZE);
    assert_eq!(ZoneLimits::within(usize::MAX), ZoneLimits::default());
}
