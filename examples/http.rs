//! An HTTP/1.1 server: a static page, a JSON endpoint, keep-alive, one task
//! per connection, `400 Bad Request` for what `httparse` rejects.
//!
//! `cargo run --example http`, then `curl http://127.0.0.1:8080/` (the
//! runner forwards host port 8080 to the guest's port 80).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::format;
use alloc::vec;
use core::sync::atomic::{AtomicU64, Ordering};
use unikernel::prelude::*;
use unikernel_net::{Net, NetError, TcpStream};

const PORT: u16 = 80;
/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 8 * 1024;
/// A keep-alive connection idle this long, or a client that stops reading
/// for this long, is dropped.
const IDLE: Duration = Duration::from_secs(10);

const INDEX: &str = "<!doctype html>\n<title>unikernel</title>\n<h1>Hello from a unikernel</h1>\n";

static REQUESTS: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
static OPEN: AtomicU64 = AtomicU64::new(0);

#[unikernel(net)]
async fn main(net: Net) -> Result<(), Error> {
    let (ip, len) = net.configured().await;
    let listener = net.tcp_listen_with_backlog(PORT, 32).await?;
    unikernel::println!("http: serving on {ip}/{len} port {PORT}");
    loop {
        let (conn, _peer) = listener.accept().await?;
        CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        spawn(async move {
            OPEN.fetch_add(1, Ordering::Relaxed);
            let _ = serve(conn, net).await;
            OPEN.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// What the request asked for, decided while its head is borrowed.
struct Request {
    status: &'static str,
    content_type: &'static str,
    body: alloc::string::String,
    head_only: bool,
    keep_alive: bool,
    /// Bytes of request body to skip (`Content-Length`).
    body_len: usize,
}

/// Serves requests on `conn` until the client closes, errs or idles.
async fn serve(mut conn: TcpStream, net: Net) -> Result<(), NetError> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut filled = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let (request, consumed) = match req.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(n)) => match route(&req, net) {
                Some(request) => (request, n),
                None => (bad_request("unsupported request"), n),
            },
            Ok(httparse::Status::Partial) if filled < buf.len() => {
                match timeout(IDLE, conn.read(&mut buf[filled..])).await {
                    Ok(Ok(0)) | Err(_) => return Ok(()), // closed, or idle too long
                    Ok(Ok(n)) => filled += n,
                    Ok(Err(e)) => return Err(e),
                }
                continue;
            }
            Ok(httparse::Status::Partial) => (bad_request("request head too large"), filled),
            Err(e) => (bad_request(&format!("malformed request: {e}")), filled),
        };
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        respond(&mut conn, &request).await?;
        if !request.keep_alive {
            conn.close();
            // Let the client read the response before the socket goes.
            let _ = timeout(IDLE, conn.flush()).await;
            return Ok(());
        }
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        skip_body(&mut conn, &mut buf, &mut filled, request.body_len).await?;
    }
}

fn route(req: &httparse::Request<'_, '_>, net: Net) -> Option<Request> {
    let (method, path, version) = (req.method?, req.path?, req.version?);
    let header = |name: &str| req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let connection = header("connection").and_then(|v| core::str::from_utf8(v).ok()).unwrap_or("");
    let keep_alive = if version == 1 {
        !connection.eq_ignore_ascii_case("close")
    } else {
        connection.eq_ignore_ascii_case("keep-alive")
    };
    let body_len = match header("content-length") {
        None => 0,
        Some(v) => core::str::from_utf8(v).ok()?.trim().parse().ok()?,
    };
    if header("transfer-encoding").is_some() {
        return None; // chunked request bodies are not supported
    }
    let head_only = method == "HEAD";
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/") => ("200 OK", "text/html; charset=utf-8", INDEX.into()),
        ("GET" | "HEAD", "/api/status") => ("200 OK", "application/json", status_json(net)),
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain", "not found\n".into()),
        _ => ("405 Method Not Allowed", "text/plain", "method not allowed\n".into()),
    };
    Some(Request { status, content_type, body, head_only, keep_alive, body_len })
}

fn status_json(net: Net) -> alloc::string::String {
    let heap = unikernel::heap::stats();
    format!(
        "{{\"requests\":{},\"connections\":{},\"open\":{},\"heap_used\":{},\"net_interrupts\":{},\"uptime_ms\":{}}}\n",
        REQUESTS.load(Ordering::Relaxed),
        CONNECTIONS.load(Ordering::Relaxed),
        OPEN.load(Ordering::Relaxed),
        heap.used,
        net.device_interrupts(),
        unikernel::time::Instant::now().as_nanos() / 1_000_000,
    )
}

fn bad_request(why: &str) -> Request {
    Request {
        status: "400 Bad Request",
        content_type: "text/plain",
        body: format!("{why}\n"),
        head_only: false,
        keep_alive: false,
        body_len: 0,
    }
}

async fn respond(conn: &mut TcpStream, r: &Request) -> Result<(), NetError> {
    let head = format!(
        "HTTP/1.1 {}\r\nServer: unikernel\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        r.status,
        r.content_type,
        r.body.len(),
        if r.keep_alive { "keep-alive" } else { "close" },
    );
    let body = if r.head_only { "" } else { r.body.as_str() };
    // A client that stops reading gets IDLE to make room, then is dropped.
    let write = async {
        conn.write_all(head.as_bytes()).await?;
        conn.write_all(body.as_bytes()).await
    };
    timeout(IDLE, write).await.unwrap_or(Err(NetError::ConnectionReset))
}

/// Discards `len` bytes of request body, some of which may be in `buf`.
async fn skip_body(conn: &mut TcpStream, buf: &mut [u8], filled: &mut usize, len: usize) -> Result<(), NetError> {
    let buffered = len.min(*filled);
    buf.copy_within(buffered..*filled, 0);
    *filled -= buffered;
    let mut left = len - buffered;
    while left > 0 {
        let n = timeout(IDLE, conn.read(&mut buf[..left.min(MAX_HEAD)])).await.unwrap_or(Ok(0))?;
        if n == 0 {
            return Err(NetError::ConnectionReset);
        }
        left -= n;
    }
    Ok(())
}
