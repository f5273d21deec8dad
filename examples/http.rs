//! An HTTP/1.1 server: a static page, a JSON endpoint, keep-alive, one task
//! per connection, routed by `unikernel-http`'s `Router`, with its default
//! limits (deadlines, size caps, a memory budget shared by the connections,
//! a connection cap).
//!
//! `cargo run --example http`, then `curl http://127.0.0.1:8080/` (the
//! runner forwards host port 8080 to the guest's port 80);
//! `curl http://127.0.0.1:8080/metrics` for its metrics (Prometheus text);
//! `curl http://127.0.0.1:8080/stream?bytes=N` streams N bytes (digits),
//! made 16 KiB at a time as the client takes them, so N may exceed the
//! server's memory budget (`"budget"` in `/api/status`).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use futures_util::StreamExt;
use unikernel::prelude::*;
use unikernel_http::{Limits, Response, Router, Server, serve_streaming};
use unikernel_net::Net;

#[path = "shared/page.rs"]
mod page;

use page::INDEX;

const PORT: u16 = 80;
/// Bytes of a `/stream` chunk.
const STREAM_CHUNK: usize = 16 * 1024;

static REQUESTS: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
static OPEN: AtomicU64 = AtomicU64::new(0);

#[unikernel]
async fn main(net: Net) -> Result<(), Error> {
    let (ip, len) = net.configured().await;
    let listener = net.tcp_listen_with_backlog(PORT, 32).await?;
    let server = Server::new(Limits::default());
    unikernel::println!("http: serving on {ip}/{len} port {PORT}");
    loop {
        let (conn, _peer) = listener.accept().await?;
        CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        let server = server.clone();
        spawn(async move {
            OPEN.fetch_add(1, Ordering::Relaxed);
            let router = Router::new()
                .get("/", async |_| Response::new("200 OK", "text/html; charset=utf-8", INDEX))
                .get("/api/status", async |_| Response::new("200 OK", "application/json", status_json(net, &server)))
                .get("/metrics", async |_| unikernel_http::metrics())
                .get("/stream", async |req| {
                    let bytes = req.query_param("bytes").and_then(|n| n.parse().ok()).unwrap_or(STREAM_CHUNK as u64);
                    Response::stream("200 OK", "text/plain", digits(bytes))
                });
            let _ = serve_streaming(conn, &server, async |req| {
                let response = router.handle(req).await;
                // Counted after the status is built: it reports the requests before it.
                REQUESTS.fetch_add(1, Ordering::Relaxed);
                response
            })
            .await;
            OPEN.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// `total` bytes of "0123456789..." in chunks made only when asked for.
fn digits(total: u64) -> impl futures_util::Stream<Item = Vec<u8>> {
    let chunk = STREAM_CHUNK as u64;
    futures_util::stream::iter((0..total).step_by(STREAM_CHUNK))
        .map(move |at| (at..total.min(at + chunk)).map(|i| b'0' + (i % 10) as u8).collect())
}

fn status_json(net: Net, server: &Server) -> alloc::string::String {
    let heap = unikernel::heap::stats();
    format!(
        "{{\"requests\":{},\"connections\":{},\"open\":{},\"heap_used\":{},\"budget_used\":{},\"budget\":{},\"net_interrupts\":{},\"uptime_ms\":{}}}\n",
        REQUESTS.load(Ordering::Relaxed),
        CONNECTIONS.load(Ordering::Relaxed),
        OPEN.load(Ordering::Relaxed),
        heap.used,
        server.budget().used(),
        server.budget().capacity(),
        net.device_interrupts(),
        unikernel::time::Instant::now().as_nanos() / 1_000_000,
    )
}
