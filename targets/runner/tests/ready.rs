//! Where and when a unikernel can be reached: the runner opens a forward's
//! host port only once the guest listens on the guest port, then prints
//! where to connect; the first connection is answered on its first SYN.
//! The hosted build binds the same forwards on loopback and says where.

mod common;

use common::guest::{Guest, free_port, run, text};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

/// One `GET /` on `stream`; returns the whole reply.
fn get(mut stream: TcpStream) -> String {
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
}

/// A TCP segment in a capture: source and destination ports and flags.
struct Segment {
    from: u16,
    to: u16,
    flags: u8,
}

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// The IPv4 TCP segments of a pcap file (QEMU's `filter-dump` writes the
/// classic format, microseconds, Ethernet). Parsed by hand: the four fields
/// read here do not justify a dependency.
fn segments(pcap: &Path) -> Vec<Segment> {
    let bytes = std::fs::read(pcap).expect("the capture");
    assert_eq!(bytes.get(..4), Some(&0xa1b2_c3d4u32.to_le_bytes()[..]), "a little-endian pcap");
    let (mut at, mut found) = (24, Vec::new());
    while let Some(header) = bytes.get(at..at + 16) {
        let len = u32::from_le_bytes(header[8..12].try_into().unwrap()) as usize;
        let Some(frame) = bytes.get(at + 16..at + 16 + len) else { break };
        at += 16 + len;
        // Ethernet, IPv4, TCP.
        if frame.len() < 14 + 20 + 20 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 6 {
            continue;
        }
        let tcp = &frame[14 + usize::from(frame[14] & 0x0f) * 4..];
        let port = |i: usize| u16::from_be_bytes([tcp[i], tcp[i + 1]]);
        found.push(Segment { from: port(0), to: port(2), flags: tcp[13] });
    }
    found
}

#[test]
fn the_host_port_opens_when_the_guest_listens_and_the_first_syn_is_answered() {
    let port = free_port();
    let pcap = std::env::temp_dir().join(format!("unikernel-ready-{}.pcap", std::process::id()));
    let _ = std::fs::remove_file(&pcap);
    let dump = format!("filter-dump,id=dump,netdev=net0,file={}", pcap.display());
    let guest =
        Guest::start(&[], "http", &["--forward", &format!("{port}:80"), "--qemu-arg", "-object", "--qemu-arg", &dump]);
    // A client that waits for the server the way scripts do: it connects
    // as soon as the runner starts, and again every 10 ms while refused.
    let start = Instant::now();
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(_) => assert!(start.elapsed() < Duration::from_secs(120), "the port never opened"),
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let reply = get(stream);
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    // The runner waits for QEMU: the capture is complete once it returns.
    let (console, stderr) = guest.stop();
    let segments = segments(&pcap);
    let _ = std::fs::remove_file(&pcap);
    // Had the host port been open before the guest listened, the first SYN
    // would have gone to a guest without an address or a listener, and
    // slirp would have sent it again a second or more later.
    let syns: Vec<_> = segments.iter().filter(|s| s.to == 80 && s.flags & (SYN | ACK) == SYN).collect();
    assert_eq!(syns.len(), 1, "one connection, one SYN: {} SYNs\n{console}", syns.len());
    let answered = segments.iter().any(|s| s.from == 80 && s.to == syns[0].from && s.flags & (SYN | ACK) == SYN | ACK);
    assert!(answered, "the guest answered the SYN");
    assert!(!segments.iter().any(|s| s.from == 80 && s.flags & RST != 0), "the guest reset nothing");
    assert!(console.contains("net: listening on TCP port 80 at 10.0.2.15\n"), "{console}");
    let ready = format!("unikernel-runner: listening on http://127.0.0.1:{port}/ (guest port 80)\n");
    assert!(stderr.contains(&ready), "{stderr}");
}

#[test]
fn the_runner_names_each_forwarded_port_and_the_ports_no_forward_reaches() {
    let port = free_port();
    let mut guest = Guest::start(&[], "echo", &["--forward", &format!("udp:{port}:7")]);
    guest.wait_for("echo: listening on");
    let stderr = guest.wait_for_stderr("(guest UDP port 7)");
    assert!(
        stderr.contains(&format!("unikernel-runner: listening on 127.0.0.1:{port} (guest UDP port 7)\n")),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "unikernel-runner: the guest listens on TCP port 7, which no forward reaches: add --forward HOST:7\n"
        ),
        "{stderr}"
    );
    // The UDP forward is open once the line is out.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    udp.send_to(b"ping", ("127.0.0.1", port)).unwrap();
    let mut buf = [0; 16];
    let (n, _) = udp.recv_from(&mut buf).expect("an echo");
    assert_eq!(&buf[..n], b"ping");
}

#[test]
fn hosted_http_listens_where_the_runner_forwards_by_default() {
    // No UNIKERNEL_FORWARD: the runner's default, host 8080 for port 80,
    // which needs no root (port 80 itself would).
    let mut hosted = Guest::hosted("http", &[], &[]);
    let console = hosted.wait_for("serving on");
    assert!(console.contains("net: listening on http://127.0.0.1:8080/ (guest port 80)\n"), "{console}");
    let out = text(&run("curl", &["-s", "-i", "--max-time", "30", "http://127.0.0.1:8080/"]));
    assert!(out.starts_with("HTTP/1.1 200 OK") && out.contains("Hello from a unikernel"), "{out}");
}

#[test]
fn hosted_builds_honour_unikernel_forward_for_tcp_and_udp() {
    let (web, echo) = (free_port(), free_port());
    let mut hosted = Guest::hosted("http", &[], &[("UNIKERNEL_FORWARD", &format!("{web}:80"))]);
    let console = hosted.wait_for("serving on");
    assert!(console.contains(&format!("net: listening on http://127.0.0.1:{web}/ (guest port 80)\n")), "{console}");
    let reply = get(TcpStream::connect(("127.0.0.1", web)).unwrap());
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");

    let forwards = format!("tcp:{echo}:7,udp:{echo}:7");
    let mut hosted = Guest::hosted("echo", &[], &[("UNIKERNEL_FORWARD", &forwards)]);
    let console = hosted.wait_for("echo: listening on");
    assert!(console.contains(&format!("net: listening on 127.0.0.1:{echo} (guest TCP port 7)\n")), "{console}");
    assert!(console.contains(&format!("net: listening on 127.0.0.1:{echo} (guest UDP port 7)\n")), "{console}");
    let mut tcp = TcpStream::connect(("127.0.0.1", echo)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"hello").unwrap();
    let mut buf = [0; 5];
    tcp.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    udp.send_to(b"ping", ("127.0.0.1", echo)).unwrap();
    let mut buf = [0; 16];
    let (n, _) = udp.recv_from(&mut buf).expect("an echo");
    assert_eq!(&buf[..n], b"ping");
}

#[test]
fn a_bad_unikernel_forward_stops_a_hosted_build_with_the_reason() {
    // `timeout`: a build that ignored the variable would serve forever.
    let out = std::process::Command::new("timeout")
        .arg("60")
        .arg(common::examples(common::HOST).join("http"))
        .env("UNIKERNEL_FORWARD", "8080")
        .output()
        .expect("run hosted http");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("UNIKERNEL_FORWARD: invalid forward `8080`"), "{all}");
}
