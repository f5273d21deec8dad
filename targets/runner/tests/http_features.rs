//! `unikernel-http`'s streaming and pipelining against real clients, in
//! QEMU through user networking: curl downloads a streamed body larger
//! than the server's whole memory budget, and one write carrying several
//! requests gets its responses in order.

mod common;

use common::guest::{Guest, field, free_port, run, text};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn http_streams_a_body_larger_than_its_memory_budget_to_curl() {
    let port = free_port();
    // A small guest: its budget is a quarter of the few MiB left free.
    let mut guest = Guest::start(&[], "http", &["--memory", "16M", "--forward", &format!("{port}:80")]);
    guest.wait_for("serving on");
    let base = format!("http://127.0.0.1:{port}");
    let status = text(&run("curl", &["-s", "--max-time", "30", &format!("{base}/api/status")]));
    let budget = field(&status, "budget");
    assert!(budget > 0 && budget < 16 << 20, "{status}");
    let bytes = budget * 3;
    let out = run(
        "curl",
        &["-s", "--max-time", "120", "-D", "/dev/stderr", "-o", "-", &format!("{base}/stream?bytes={bytes}")],
    );
    let headers = String::from_utf8_lossy(&out.stderr);
    assert!(headers.starts_with("HTTP/1.1 200 OK\r\n"), "{headers}");
    assert!(headers.contains("\r\nTransfer-Encoding: chunked\r\n"), "{headers}");
    assert_eq!(out.stdout.len() as u64, bytes, "curl got the whole body: {headers}");
    assert!(out.stdout.iter().enumerate().all(|(i, &b)| b == b'0' + (i % 10) as u8), "the body is intact");
    let after = text(&run("curl", &["-s", "--max-time", "30", &format!("{base}/api/status")]));
    assert_eq!(field(&after, "budget_used"), 0, "{after}");
}

#[test]
fn http_answers_requests_pipelined_in_one_write_in_order() {
    let port = free_port();
    let mut guest = Guest::start(&[], "http", &["--forward", &format!("{port}:80")]);
    guest.wait_for("serving on");
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // One write, so (nearly always) one segment: four requests, the last
    // asking to close.
    conn.write_all(
        b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n\
          GET / HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /api/status HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /stream?bytes=12 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).expect("the server closes after the last response");
    let reply = String::from_utf8_lossy(&reply);
    let statuses: Vec<_> = reply.match_indices("HTTP/1.1 ").map(|(at, _)| &reply[at..at + 15]).collect();
    assert_eq!(statuses, ["HTTP/1.1 404 No", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK"], "{reply}");
    let html = reply.find("<h1>Hello from a unikernel</h1>").expect("the page");
    let json = reply.find("application/json").expect("the status head");
    assert!(html < json, "in order: {reply}");
    assert!(!reply.contains("{\"requests\""), "HEAD got no body: {reply}");
    assert!(reply.ends_with("Connection: close\r\n\r\nc\r\n012345678901\r\n0\r\n\r\n"), "{reply}");
}
