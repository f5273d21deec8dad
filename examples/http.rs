//! An HTTP/1.1 server: a static page, a JSON endpoint, keep-alive, one task
//! per connection, with `unikernel-http`'s default limits (deadlines, size
//! caps, a memory budget shared by the connections).
//!
//! `cargo run --example http`, then `curl http://127.0.0.1:8080/` (the
//! runner forwards host port 8080 to the guest's port 80);
//! `curl http://127.0.0.1:8080/metrics` for its metrics (Prometheus text).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::format;
use core::sync::atomic::{AtomicU64, Ordering};
use unikernel::prelude::*;
use unikernel_http::{Limits, Request, Response, Server, serve};
use unikernel_net::Net;

#[path = "shared/page.rs"]
mod page;

use page::INDEX;

const PORT: u16 = 80;

static REQUESTS: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
static OPEN: AtomicU64 = AtomicU64::new(0);

#[unikernel]
async fn main(net: Net) -> Result<(), Error> {
    let (ip, len) = net.configured().await;
    let listener = net.tcp_listen_with_backlog(PORT, 32).await?;
    // Bodies are read (up to the default 64 KiB) and ignored.
    let server = Server::new(Limits::default());
    unikernel::println!("http: serving on {ip}/{len} port {PORT}");
    loop {
        let (conn, _peer) = listener.accept().await?;
        CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        let server = server.clone();
        spawn(async move {
            OPEN.fetch_add(1, Ordering::Relaxed);
            let _ = serve(conn, &server, async |req| route(req, net, &server)).await;
            OPEN.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

fn route(req: Request, net: Net, server: &Server) -> Response {
    // Counted after the status is built: it reports the requests before it.
    let response = match (req.method.as_str(), req.path.as_str()) {
        ("GET" | "HEAD", "/") => Response::new("200 OK", "text/html; charset=utf-8", INDEX),
        ("GET" | "HEAD", "/api/status") => Response::new("200 OK", "application/json", status_json(net, server)),
        ("GET" | "HEAD", "/metrics") => unikernel_http::metrics(),
        ("GET" | "HEAD", _) => Response::text("404 Not Found", "not found\n"),
        _ => Response::text("405 Method Not Allowed", "method not allowed\n"),
    };
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    response
}

fn status_json(net: Net, server: &Server) -> alloc::string::String {
    let heap = unikernel::heap::stats();
    format!(
        "{{\"requests\":{},\"connections\":{},\"open\":{},\"heap_used\":{},\"budget_used\":{},\"net_interrupts\":{},\"uptime_ms\":{}}}\n",
        REQUESTS.load(Ordering::Relaxed),
        CONNECTIONS.load(Ordering::Relaxed),
        OPEN.load(Ordering::Relaxed),
        heap.used,
        server.budget().used(),
        net.device_interrupts(),
        unikernel::time::Instant::now().as_nanos() / 1_000_000,
    )
}
