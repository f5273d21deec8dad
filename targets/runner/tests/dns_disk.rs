//! The `dns_disk` example: the zone is a master file on the disk, read at
//! boot. A zone other than the compiled one is served to `dig` over UDP
//! and TCP; damaged, hostile and oversized disks are refused with the
//! reason on the console and a failure status, never a panic or a hang.

mod common;

use common::dig::{dig, section};
use common::guest::{Guest, free_port};
use common::{BARE, Run, boot, examples, workspace};
use std::path::{Path, PathBuf};

/// The example's zone as the user would edit it, with a last record
/// after filler: the file ends inside its third sector, so the last
/// record is in a partial sector.
fn zone_file(name: &str) -> PathBuf {
    let mut zone = std::fs::read_to_string(workspace().join("examples/dns_disk/other.test.zone")).unwrap();
    zone.push_str(&format!("; {}\n", "filler ".repeat(80)));
    zone.push_str("last IN TXT \"the last line, in a partial sector\"\n");
    assert!(zone.len() > 1024 && !zone.len().is_multiple_of(512), "{} bytes", zone.len());
    disk(name, zone.as_bytes())
}

/// A disk image file holding `bytes`, unique to this test process.
fn disk(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("dns_disk-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The runner's arguments: both forwards from `port`, the disk, `extra`.
fn args(port: u16, disk: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["--forward".into(), format!("udp:{port}:53"), "--forward".into(), format!("tcp:{port}:53")];
    args.extend(["--disk".into(), disk.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Boots `dns_disk` on `disk` in the background and waits for `serving`.
fn serve(disk: &Path, serving: &str) -> (Guest, u16) {
    let port = free_port();
    let args = args(port, disk, &[]);
    let mut guest = Guest::start(&[], "dns_disk", &args.iter().map(String::as_str).collect::<Vec<_>>());
    guest.wait_for(serving);
    (guest, port)
}

#[test]
fn a_zone_on_the_disk_is_served_over_udp_and_tcp() {
    let path = zone_file("served");
    let (guest, port) = serve(&path, "dns_disk: serving other.test (10 records) from the disk");
    for transport in ["+notcp", "+tcp"] {
        let out = dig(port, &[transport, "www.other.test", "A"]);
        assert!(out.contains("status: NOERROR") && out.contains(";; flags: qr aa rd;"), "{out}");
        assert_eq!(section(&out, "ANSWER"), ["www.other.test.\t\t600\tIN\tA\t198.51.100.80"], "{out}");
        let out = dig(port, &[transport, "web.other.test", "AAAA"]);
        assert_eq!(
            section(&out, "ANSWER"),
            ["web.other.test.\t\t600\tIN\tCNAME\twww.other.test.", "www.other.test.\t\t600\tIN\tAAAA\t2001:db8:1::80"],
            "{out}"
        );
        let out = dig(port, &[transport, "last.other.test", "TXT"]);
        assert_eq!(section(&out, "ANSWER"), ["last.other.test.\t600\tIN\tTXT\t\"the last line, in a partial sector\""]);
    }
    let out = dig(port, &["nope.other.test", "A"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    assert_eq!(
        section(&out, "AUTHORITY"),
        ["other.test.\t\t60\tIN\tSOA\tns.other.test. hostmaster.other.test. 2026112802 3600 600 86400 60"],
        "{out}"
    );
    // The compiled example zone is not in this image's answers.
    assert!(dig(port, &["www.example.test", "A"]).contains("status: REFUSED"));
    drop(guest);
    std::fs::remove_file(path).unwrap();
}

/// A damaged disk: its name, its bytes, more runner arguments, and the
/// message it must be refused with.
type Case<'a> = (&'a str, Option<&'a [u8]>, &'a [&'a str], &'a str);

/// Boots `dns_disk` on `bytes` (or on a disk the runner creates, for
/// `None`) with `extra` arguments.
fn refused(name: &str, bytes: Option<&[u8]>, extra: &[&str]) -> Run {
    let path = match bytes {
        Some(bytes) => disk(name, bytes),
        None => std::env::temp_dir().join(format!("dns_disk-{}-{name}", std::process::id())),
    };
    let args = args(free_port(), &path, extra);
    let run = boot(&examples(BARE).join("dns_disk"), &args.iter().map(String::as_str).collect::<Vec<_>>());
    std::fs::remove_file(path).unwrap();
    run
}

#[test]
fn damaged_hostile_and_oversized_disks_are_refused_with_the_reason() {
    let zone = std::fs::read(workspace().join("examples/dns_disk/other.test.zone")).unwrap();
    let at = |needle: &str| zone.windows(needle.len()).position(|w| w == needle.as_bytes()).unwrap();
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1).collect();
    let outside = [&zone[..], b"www.example.org. IN A 192.0.2.1\n"].concat();
    // 1.1 MiB of valid records: refused for its size alone.
    let huge = [&zone[..], "x IN TXT \"padding\"\n".repeat(60_000).as_bytes()].concat();
    // 300 KiB: served with the default 64 MiB, over the budget of a small guest.
    let large = [&zone[..], "x IN TXT \"padding\"\n".repeat(16_000).as_bytes()].concat();
    let cases: Vec<Case> = vec![
        ("fresh", None, &[], "the disk holds no zone: it starts with a zero byte"),
        ("truncated", Some(&zone[..at("3600 600")]), &[], "the zone on the disk is refused: line 6: `(` never closed"),
        ("garbage", Some(&garbage), &[], "the zone on the disk is refused: line 1: not UTF-8 text"),
        (
            "outside",
            Some(&outside),
            &[],
            "the zone on the disk is refused: line 15: www.example.org is outside the zone other.test",
        ),
        ("huge", Some(&huge), &[], "the zone on the disk is refused: larger than 1048576 bytes"),
        ("budget", Some(&large), &["--memory", "4M"], "the zone on the disk is refused: larger than"),
    ];
    for (name, bytes, extra, message) in cases {
        let run = refused(name, bytes, extra);
        run.assert(1, &[&format!("Error: {message}")]);
        assert!(!run.stdout.contains("dns_disk: serving") && !run.stdout.contains("panicked"), "{}", run.stdout);
    }
    let large = disk("large", &large);
    drop(serve(&large, "dns_disk: serving other.test (16009 records)"));
    std::fs::remove_file(large).unwrap();
}
