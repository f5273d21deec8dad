//! The `net` component against real clients: curl and std sockets through
//! QEMU's user networking, and, inside a network namespace this test
//! creates, a tap device with ping, dnsmasq (DHCP and DNS) and a thousand
//! short connections. The namespace tests need root, `ip`, `ping` and
//! `dnsmasq` (`.ci/run` installs them).

mod common;

use common::guest::{Guest, field, free_port, run, text};
use common::netns::Namespace;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

#[test]
fn http_answers_curl_with_keep_alive() {
    let port = free_port();
    let mut guest = Guest::start(&[], "http", &["--forward", &format!("{port}:80")]);
    guest.wait_for("serving on");
    let base = format!("http://127.0.0.1:{port}");
    let out = run(
        "curl",
        &["-sv", "--max-time", "30", &format!("{base}/"), &format!("{base}/api/status"), &format!("{base}/nope")],
    );
    let out = text(&out);
    assert!(out.contains("< HTTP/1.1 200 OK"), "{out}");
    assert!(out.contains("< Content-Type: text/html; charset=utf-8"), "{out}");
    assert!(out.contains("<h1>Hello from a unikernel</h1>"), "{out}");
    assert!(out.contains("< Content-Type: application/json"), "{out}");
    assert!(out.contains("< HTTP/1.1 404 Not Found"), "{out}");
    // Three requests, one connection: curl reused it twice.
    assert_eq!(out.matches("Re-using existing connection").count(), 2, "{out}");
    let json = out.lines().find(|l| l.starts_with("{\"requests\"")).expect("status JSON");
    assert_eq!(field(json, "requests"), 1, "one request came before the status request: {json}");
    assert!(field(json, "net_interrupts") > 0, "the device interrupts on microvm's virtio-mmio: {json}");
}

#[test]
fn http_answers_on_q35_and_pc_through_virtio_pci_with_msix() {
    for machine in ["q35", "pc"] {
        let port = free_port();
        let mut guest =
            Guest::start(&[], "http", &["--machine", machine, "--forward", &format!("{port}:80"), "log=debug"]);
        let console = guest.wait_for("serving on");
        assert!(console.contains("virtio: Network on MSI-X -> virtio-net"), "{machine}: {console}");
        assert!(console.contains(": MSI-X on line 24"), "{machine}: {console}");
        let url = format!("http://127.0.0.1:{port}/");
        let out = text(&run("curl", &["-s", "-i", "--max-time", "30", &url, &format!("{url}api/status")]));
        assert!(out.starts_with("HTTP/1.1 200 OK") && out.contains("Hello from a unikernel"), "{machine}: {out}");
        // Only MSI-X is registered: the requests got through on its interrupts.
        let json = out.lines().find(|l| l.starts_with("{\"requests\"")).expect("status JSON");
        assert!(field(json, "net_interrupts") > 0, "{machine}: {json}");
    }
}

#[test]
fn echo_returns_ten_mebibytes_intact_over_tcp_and_datagrams_over_udp() {
    let port = free_port();
    let mut guest =
        Guest::start(&[], "echo", &["--forward", &format!("{port}:7"), "--forward", &format!("udp:{port}:7")]);
    // After both sockets are bound, so both forwards are open.
    guest.wait_for("echo: listening on");
    let data: Vec<u8> = (0..10u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut writer = conn.try_clone().unwrap();
    let sent = data.clone();
    let sender = std::thread::spawn(move || writer.write_all(&sent).unwrap());
    let mut echoed = vec![0; data.len()];
    conn.read_exact(&mut echoed).expect("the whole stream comes back");
    sender.join().unwrap();
    assert!(echoed == data, "the echoed bytes differ");

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for size in [1, 512, 1400] {
        let datagram: Vec<u8> = (0..size).map(|i| i as u8 ^ 0x5a).collect();
        udp.send_to(&datagram, ("127.0.0.1", port)).unwrap();
        let mut buf = [0; 2048];
        let (n, _) = udp.recv_from(&mut buf).expect("a UDP echo");
        assert_eq!(&buf[..n], &datagram[..]);
    }
}

#[test]
fn http_rejects_bad_requests_and_outlives_bad_clients() {
    let port = free_port();
    let mut guest = Guest::start(&[], "http", &["--forward", &format!("{port}:80")]);
    guest.wait_for("serving on");
    let request = |raw: &[u8]| {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c.write_all(raw).unwrap();
        let mut reply = String::new();
        let _ = c.read_to_string(&mut reply);
        reply
    };
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    ] {
        let reply = request(bad);
        assert!(reply.starts_with("HTTP/1.1 400 Bad Request"), "{bad:?} -> {reply}");
    }
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
    assert!(request(huge.as_bytes()).starts_with("HTTP/1.1 400 Bad Request"));

    // A half-open client (head never finished) and one that never reads.
    let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    let pipelined = "GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(4000);
    let _ = stalled.write_all(pipelined.as_bytes()); // may stop when both buffers are full
    let reply = request(b"GET /api/status HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "served while others misbehave: {reply}");
    assert!(field(&reply, "open") >= 3, "the bad clients are still connected: {reply}");
    drop((half, stalled));
}

// ---- inside a network namespace -------------------------------------------

#[test]
fn in_a_namespace_dhcp_and_dns_come_from_dnsmasq() {
    let ns = Namespace::new("dhcp");
    let pidfile = std::env::temp_dir().join(format!("{}.dnsmasq.pid", ns.name));
    let dnsmasq = ns.run(
        "dnsmasq",
        &[
            "--interface=tap0",
            "--bind-interfaces",
            "--dhcp-range=10.10.0.50,10.10.0.60,1h",
            "--address=/unikernel.test/10.10.0.77",
            "--no-resolv",
            "--no-hosts",
            &format!("--pid-file={}", pidfile.display()),
        ],
    );
    assert!(dnsmasq.status.success(), "dnsmasq: {}", text(&dnsmasq));
    let mut guest = Guest::start(&ns.exec(), "resolve", &["--tap", "tap0", "name=unikernel.test", "name=missing.test"]);
    let console = guest.wait_for("missing.test ->");
    assert!(console.contains("resolve: configured as 10.10.0.5"), "an address from the DHCP range: {console}");
    assert!(console.contains("unikernel.test -> [10.10.0.77]"), "{console}");
    assert!(console.contains("missing.test -> error: name not found"), "{console}");
}

#[test]
fn in_a_namespace_the_guest_answers_ping_and_thousand_dropped_connections_leave_no_trace() {
    let ns = Namespace::new("tap");
    let mut guest = Guest::start(&ns.exec(), "http", &["--tap", "tap0", "ip=10.10.0.2/24", "gw=10.10.0.1"]);
    guest.wait_for("serving on 10.10.0.2/24");
    let ping = ns.run("ping", &["-c", "3", "-W", "5", "10.10.0.2"]);
    assert!(text(&ping).contains("3 received"), "{}", text(&ping));

    let status = || {
        let out = ns.run("curl", &["-s", "--max-time", "20", "http://10.10.0.2/api/status"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Open and drop connections (every third sends a request first), wait
    // for them to close, and read the heap. A warm-up round sizes the
    // executor's and the socket set's tables; two rounds of 500 after it
    // may not leave even 8 bytes per connection behind.
    let churn = |count: u32| {
        let script = format!(
            r#"for i in $(seq {count}); do exec 3<>/dev/tcp/10.10.0.2/80 || exit 1; if [ $((i % 3)) = 0 ]; then printf 'GET / HTTP/1.1\r\n\r\n' >&3; fi; exec 3<&-; done"#
        );
        let out = ns.run("bash", &["-c", &script]);
        assert!(out.status.success(), "churn: {}", text(&out));
        let settle = Instant::now();
        while field(&status(), "open") != 1 {
            // Only the status request itself is open once all closed.
            assert!(settle.elapsed() < Duration::from_secs(40), "connections left open: {}", status());
            std::thread::sleep(Duration::from_secs(1));
        }
        std::thread::sleep(Duration::from_secs(11)); // past the stack's 10 s linger
        field(&status(), "heap_used")
    };
    let warm = churn(250);
    let after = (churn(500), churn(500));
    assert!(after.1 < warm + 8 * 1000, "the heap grew from {warm} to {after:?} bytes over 1000 connections");
    let json = status();
    assert!(field(&json, "connections") >= 1250, "{json}");
}
