//! The HTTP server's limits against hostile clients, in QEMU through user
//! networking: slowloris drips against `http`, and against `kv` in a small
//! guest, a hundred announced-but-never-sent bodies and many readers of a
//! large value that never read.

mod common;

use common::guest::{Guest, free_port, run, text};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

/// Sends `raw` on a new connection and reads until the server closes it or
/// 60 s pass; `None` when the connection is refused or reset first.
fn exchange(port: u16, raw: &[u8]) -> Option<String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    conn.write_all(raw).ok()?;
    let mut reply = Vec::new();
    match conn.read_to_end(&mut reply) {
        Ok(_) => Some(String::from_utf8_lossy(&reply).into_owned()),
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
            panic!("no end of the reply in 60 s: {}", String::from_utf8_lossy(&reply))
        }
        Err(_) => None,
    }
}

/// The status line of a reply.
fn status(reply: &str) -> &str {
    reply.split("\r\n").next().unwrap_or("")
}

/// A JSON number field of an `/api/status` reply.
fn field(json: &str, name: &str) -> u64 {
    let at = json.find(&format!("\"{name}\":")).unwrap_or_else(|| panic!("no {name} in {json}"));
    json[at + name.len() + 3..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}

fn api_status(port: u16) -> String {
    let reply = exchange(port, b"GET /api/status HTTP/1.1\r\nConnection: close\r\n\r\n").expect("status");
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    reply
}

/// Waits until only the status request itself is open, then past the
/// stack's 10 s linger for closed sockets; returns the heap in use.
fn settled_heap(port: u16) -> u64 {
    let start = Instant::now();
    while field(&api_status(port), "open") != 1 {
        assert!(start.elapsed() < Duration::from_secs(120), "connections left open: {}", api_status(port));
        thread::sleep(Duration::from_secs(1));
    }
    thread::sleep(Duration::from_secs(11));
    let json = api_status(port);
    assert_eq!(field(&json, "budget_used"), 0, "{json}");
    field(&json, "heap_used")
}

#[test]
fn http_closes_slowloris_drips_at_the_head_deadline_and_serves_others_meanwhile() {
    let port = free_port();
    let mut guest = Guest::start(&[], "http", &["--forward", &format!("{port}:80")]);
    guest.wait_for("serving on");
    // Ten clients each drip a header, one byte every 2 s (well within the
    // 10 s idle timeout of each read), for up to 40 bytes; the head never ends.
    const DRIP: usize = 40;
    let drips: Vec<_> = (0..10)
        .map(|_| {
            thread::spawn(move || {
                let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                conn.write_all(b"GET / HTTP/1.1\r\nX-Drip: ").unwrap();
                let (mut reply, mut sent) = (Vec::new(), 0);
                while sent < DRIP {
                    match conn.read_to_end(&mut reply) {
                        Ok(_) => break, // closed by the server
                        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
                        Err(e) => panic!("{e}"),
                    }
                    if conn.write_all(b"a").is_err() {
                        break;
                    }
                    sent += 1;
                }
                (String::from_utf8_lossy(&reply).into_owned(), sent)
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(3));
    let out = text(&run("curl", &["-s", "-i", "--max-time", "30", &format!("http://127.0.0.1:{port}/")]));
    assert!(out.starts_with("HTTP/1.1 200 OK") && out.contains("Hello from a unikernel"), "{out}");
    for drip in drips {
        let (reply, sent) = drip.join().unwrap();
        assert!(sent < DRIP, "the server let a dripped head run for {sent} bytes");
        assert_eq!(status(&reply), "HTTP/1.1 408 Request Timeout", "{reply}");
    }
    assert_eq!(field(&api_status(port), "open"), 1, "the drips are gone");
}

#[test]
fn kv_in_16m_refuses_bodies_and_readers_beyond_its_budget_with_503_and_recovers() {
    let port = free_port();
    let disk = std::env::temp_dir().join(format!("unikernel-http-limits-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&disk);
    let mut guest = Guest::start(
        &[],
        "kv",
        &["--memory", "16M", "--disk", disk.to_str().unwrap(), "--disk-size", "8M", "--forward", &format!("{port}:80")],
    );
    guest.wait_for("kv: serving on");

    // A hundred clients announce a 1 MiB value each and send nothing: the
    // budget admits a few (they get 408 when their body does not come),
    // the rest get 503 at once; a connection cap may also reset some.
    let flood = || {
        let clients: Vec<_> = (0..100)
            .map(|i| {
                // 50 ms apart: all within the admitted ones' 10 s, without
                // overflowing the listener's backlog (a SYN flood is not
                // this test's subject).
                thread::sleep(Duration::from_millis(50));
                thread::spawn(move || {
                    exchange(port, format!("PUT /kv/flood{i} HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n").as_bytes())
                })
            })
            .collect();
        // Meanwhile a small write and a status request are served.
        let put = exchange(port, b"PUT /kv/small HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        assert_eq!(put.as_deref().map(status), Some("HTTP/1.1 200 OK"), "{put:?}");
        let (mut busy, mut late, mut reset) = (0, 0, 0);
        for client in clients {
            match client.join().unwrap() {
                Some(reply) if status(&reply) == "HTTP/1.1 503 Service Unavailable" => {
                    assert!(reply.contains("\r\nRetry-After: "), "{reply}");
                    busy += 1;
                }
                Some(reply) if status(&reply) == "HTTP/1.1 408 Request Timeout" => late += 1,
                Some(reply) if reply.is_empty() => reset += 1,
                None => reset += 1,
                Some(reply) => panic!("unexpected reply to an unsent body: {reply}"),
            }
        }
        assert!(busy > 0 && late > 0, "503: {busy}, 408: {late}, reset: {reset}");
        settled_heap(port)
    };
    let warm = flood();
    let after = flood();
    assert!(after < warm + 16 * 1024, "the heap grew from {warm} to {after} bytes over a flood");

    // A 1 MiB value, then forty readers that never read it.
    let value = vec![b'v'; 1 << 20];
    let mut put =
        format!("PUT /kv/big HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", value.len()).into_bytes();
    put.extend_from_slice(&value);
    assert_eq!(exchange(port, &put).as_deref().map(status), Some("HTTP/1.1 200 OK"));
    let readers: Vec<_> = (0..40)
        .filter_map(|_| {
            thread::sleep(Duration::from_millis(50));
            let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
            conn.write_all(b"GET /kv/big HTTP/1.1\r\n\r\n").ok()?;
            Some(conn)
        })
        .collect();
    thread::sleep(Duration::from_secs(5));
    // Those refused got a short 503; the admitted ones are stuck writing.
    let mut busy = 0;
    for mut conn in readers {
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = [0; 64];
        let n = conn.read(&mut head).unwrap_or(0);
        busy += usize::from(head[..n].starts_with(b"HTTP/1.1 503 Service Unavailable"));
    }
    assert!(busy > 0, "every reader of the large value was admitted");
    let json = api_status(port);
    assert!(json.contains("\"heap_used\""), "the guest is alive: {json}");
    // Once the readers are gone (reset) their budget is back: a read that
    // honours Retry-After gets through.
    let get = (0..30)
        .map(|_| exchange(port, b"GET /kv/small HTTP/1.1\r\nConnection: close\r\n\r\n").expect("a normal read"))
        .find(|reply| {
            let busy = status(reply) == "HTTP/1.1 503 Service Unavailable";
            if busy {
                thread::sleep(Duration::from_secs(1));
            }
            !busy
        })
        .expect("served within 30 retries");
    assert!(get.starts_with("HTTP/1.1 200 OK\r\n") && get.ends_with("\r\n\r\nhello"), "{get}");
    drop(guest);
    let _ = std::fs::remove_file(&disk);
}
