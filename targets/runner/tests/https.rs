//! The `https` example with real clients, in QEMU through user networking
//! and hosted: curl over TLS 1.3, `openssl s_client` showing the chain (and
//! curl verifying the certificate it showed), then hostile handshakes, each
//! refused with an alert or a close, after which the guest still serves.

mod common;

use common::guest::{Guest, free_port, run, text};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

/// The page of `examples/shared/page.rs`.
const PAGE: &str = "<h1>Hello from a unikernel</h1>";

/// `curl -k` pinned to TLS 1.3; returns its verbose output and the page.
fn curl_tls13(port: u16, extra: &[&str]) -> String {
    let url = format!("https://127.0.0.1:{port}/");
    let mut args = vec!["-sS", "-v", "--max-time", "60", "--tlsv1.3", "--tls-max", "1.3"];
    args.extend(extra);
    args.push(&url);
    text(&run("curl", &args))
}

fn assert_serves(port: u16) {
    let out = curl_tls13(port, &["-k"]);
    assert!(out.contains("SSL connection using TLSv1.3"), "{out}");
    assert!(out.contains("< HTTP/1.1 200 OK"), "{out}");
    assert!(out.contains(PAGE), "{out}");
}

/// `openssl s_client` with `args`, its stdin closed at once; all it printed.
fn s_client(port: u16, args: &[&str]) -> String {
    let connect = format!("127.0.0.1:{port}");
    let mut all = vec!["s_client", "-connect", &connect];
    all.extend(args);
    let out =
        Command::new("timeout").arg("60").arg("openssl").args(&all).stdin(Stdio::null()).output().expect("run openssl");
    text(&out)
}

/// The first TLS record a real client sends (OpenSSL's TLS 1.3
/// ClientHello), caught on a local listener.
fn client_hello() -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = thread::spawn(move || s_client(port, &["-tls1_3", "-servername", "localhost"]));
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut hello = vec![0; 5];
    conn.read_exact(&mut hello).unwrap();
    let len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
    hello.resize(5 + len, 0);
    conn.read_exact(&mut hello[5..]).unwrap();
    drop(conn);
    let _ = client.join();
    assert_eq!(hello[0], 0x16, "a handshake record");
    hello
}

/// Sends `raw`, closes the sending side, and reads the reply until the
/// server closes (an empty reply when it resets instead).
fn exchange(port: u16, raw: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = conn.write_all(raw);
    let _ = conn.shutdown(Shutdown::Write);
    let mut reply = Vec::new();
    match conn.read_to_end(&mut reply) {
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
            panic!("the server neither answered nor closed in 60 s")
        }
        _ => reply,
    }
}

/// A fatal TLS alert record (`15 03 03 00 02 02 <description>`).
fn alert(reply: &[u8]) -> Option<u8> {
    match reply {
        [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description, ..] => Some(*description),
        _ => None,
    }
}

/// The value of a Prometheus counter in `/metrics`, fetched over TLS.
fn counter(port: u16, name: &str) -> u64 {
    let out = text(&run("curl", &["-sSk", "--max-time", "60", &format!("https://127.0.0.1:{port}/metrics")]));
    let line = out.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name} in {out}"));
    line[name.len() + 1..].trim().parse().unwrap()
}

#[test]
fn curl_gets_the_page_over_tls13_and_s_client_shows_a_chain_curl_can_verify() {
    let port = free_port();
    let mut guest = Guest::start(&[], "https", &["--forward", &format!("{port}:443")]);
    guest.wait_for("serving on");
    assert_serves(port);

    let shown = s_client(port, &["-tls1_3", "-showcerts", "-servername", "localhost"]);
    assert!(shown.contains("Certificate chain\n 0 s:"), "{shown}");
    assert!(shown.contains("New, TLSv1.3, Cipher is TLS_"), "{shown}");
    // The certificate it showed verifies the server for `localhost` (its
    // name, its key, its dates against the host's clock) with no `-k`.
    let begin = shown.find("-----BEGIN CERTIFICATE-----").expect("a PEM certificate");
    let end = shown.find("-----END CERTIFICATE-----").expect("its end") + "-----END CERTIFICATE-----".len();
    let pem = std::env::temp_dir().join(format!("unikernel-https-{port}.pem"));
    std::fs::write(&pem, format!("{}\n", &shown[begin..end])).unwrap();
    let url = format!("https://localhost:{port}/");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let verified = text(&run(
        "curl",
        &["-sS", "--max-time", "60", "--cacert", pem.to_str().unwrap(), "--resolve", &resolve, &url],
    ));
    let _ = std::fs::remove_file(&pem);
    assert!(verified.contains(PAGE), "{verified}");
}

#[test]
fn bad_handshakes_get_alerts_or_closes_and_the_guest_keeps_serving() {
    let port = free_port();
    let mut guest = Guest::start(&[], "https", &["--forward", &format!("{port}:443")]);
    guest.wait_for("serving on");
    let failed_before = counter(port, "unikernel_tls_handshake_failures_total");
    let hello = client_hello();

    // Plain HTTP and random bytes: not a TLS record (decode_error, 50).
    assert_eq!(alert(&exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")), Some(50));
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    assert!(alert(&exchange(port, &garbage)).is_some(), "garbage gets an alert");
    // A record header announcing more than any TLS record may hold.
    assert!(alert(&exchange(port, &[0x16, 0x03, 0x03, 0xff, 0xff])).is_some(), "an oversized record gets an alert");
    // A real ClientHello cut short, then the client's FIN: closed, no reply.
    assert_eq!(exchange(port, &hello[..hello.len() / 2]), b"");
    // A real ClientHello announcing itself as 16 MiB long, its "rest" in
    // further full records: the server stops when its buffer is full.
    let mut huge = hello.clone();
    huge[6..9].copy_from_slice(&[0xff, 0xff, 0xff]);
    for _ in 0..3 {
        huge.extend([0x16, 0x03, 0x03, 0x40, 0x00]);
        huge.extend([0u8; 0x4000]);
    }
    let reply = exchange(port, &huge);
    assert!(alert(&reply).is_some() || reply.is_empty(), "a 16 MiB ClientHello: {reply:?}");

    // Real clients the server must turn away.
    let wrong_name = s_client(port, &["-tls1_3", "-servername", "evil.example"]);
    assert!(wrong_name.contains("alert"), "wrong SNI: {wrong_name}");
    let tls12 = s_client(port, &["-tls1_2"]);
    assert!(tls12.contains("alert protocol version"), "TLS 1.2 only: {tls12}");
    let old = text(&run(
        "curl",
        &["-sSk", "--max-time", "60", "--tlsv1.0", "--tls-max", "1.2", &format!("https://127.0.0.1:{port}/")],
    ));
    assert!(!old.contains(PAGE), "a client limited to TLS 1.0-1.2 got the page: {old}");

    assert_serves(port);
    // Garbage, plain HTTP, oversized, truncated, huge, SNI, two old clients.
    let failed = counter(port, "unikernel_tls_handshake_failures_total") - failed_before;
    assert!(failed >= 8, "{failed} handshake failures counted");
}

#[test]
fn the_hosted_build_serves_the_page_over_tls13() {
    let port = free_port();
    let forward = format!("tcp:{port}:443");
    let mut guest = Guest::hosted("https", &[], &[("UNIKERNEL_FORWARD", &forward)]);
    guest.wait_for("serving on");
    assert_serves(port);
}

#[test]
fn many_handshakes_in_a_small_guest_are_capped_not_an_out_of_memory() {
    // The debug image ends at about 4.5 MiB: 6M leaves it about the heap
    // the release image has at its smallest memory (2560K). A quarter of
    // that holds a few connections, not 64.
    let port = free_port();
    let mut guest = Guest::start(&[], "https", &["--forward", &format!("{port}:443"), "--memory", "6M"]);
    guest.wait_for("serving on");
    let hello = client_hello();
    // 64 clients send a real ClientHello and then hold their connection,
    // each handshake waiting for them until its deadline. (Without the cap
    // the guest runs out of memory after about a dozen and dies.)
    let held: Vec<TcpStream> = (0..64)
        .filter_map(|_| {
            let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
            conn.write_all(&hello).ok()?;
            Some(conn)
        })
        .collect();
    thread::sleep(Duration::from_secs(3));
    drop(held);
    let console = guest.wait_for("serving on");
    assert!(!console.contains("memory allocation") && !console.contains("panicked"), "{console}");
    // The guest is still there, refused the excess, and serves again.
    assert_serves(port);
    assert!(counter(port, "unikernel_tls_busy_total") > 0, "the cap refused some\n{}", guest.stderr());
}
