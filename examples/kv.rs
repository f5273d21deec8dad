//! A key-value service: the crash-safe store on the disk, over HTTP.
//!
//! `cargo run --example kv` (the runner creates a disk image on first use;
//! `--disk PATH` for another), then from the host:
//! `curl -X PUT --data-binary @file http://127.0.0.1:8080/kv/k`,
//! `curl http://127.0.0.1:8080/kv/k`, `curl -X DELETE ...`, and
//! `curl http://127.0.0.1:8080/kv` for the keys (1000 at a time:
//! `/kv?after=LAST` for the next page). A `PUT` or `DELETE` is
//! answered only once it is durable. `format` on the command line starts a
//! new store on a disk that holds something else.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::format;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use unikernel::prelude::*;
use unikernel_http::{Limits, Request, Response, Router, Server, serve_streaming};
use unikernel_net::{Net, net};
use unikernel_storage::{Block, Store, StoreError, block};

const PORT: u16 = 80;
/// Largest value accepted.
const MAX_VALUE: usize = 1 << 20;
/// Keys per `GET /kv` page (at most 1 KiB each: a page fits in `MAX_VALUE`).
const LIST_PAGE: usize = 1000;

/// Connections being served.
static OPEN: AtomicU64 = AtomicU64::new(0);

#[unikernel(net, block)]
async fn main(net: Net, disk: Block) -> Result<(), Error> {
    // The key index may take a quarter of the memory left after boot.
    let index_bytes = unikernel::free_memory().map_or(8 << 20, |free| free / 4);
    let limits = unikernel_storage::Limits { max_value: MAX_VALUE, index_bytes };
    let store = match Store::open_with(disk, limits).await {
        Err(StoreError::NotAStore | StoreError::UnsupportedFormat { .. })
            if unikernel::cmdline::args().any(|a| a == "format") =>
        {
            Store::format_with(disk, limits).await?
        }
        other => other?,
    };
    let r = store.recovery();
    unikernel::println!(
        "kv: {} keys; replayed {} records, {} damaged bytes skipped, torn tail: {}, formatted: {}",
        store.len(),
        r.records,
        r.damaged_bytes,
        r.torn_tail,
        r.formatted
    );
    let store = Rc::new(store);
    let (ip, len) = net.configured().await;
    let listener = net.tcp_listen_with_backlog(PORT, 16).await?;
    unikernel::println!("kv: serving on {ip}/{len} port {PORT}");
    let server = Server::new(Limits { max_body: MAX_VALUE, ..Limits::default() });
    loop {
        let (conn, _peer) = listener.accept().await?;
        let (store, server) = (store.clone(), server.clone());
        spawn(async move {
            OPEN.fetch_add(1, Ordering::Relaxed);
            let router = routes(&server, &store);
            let _ = serve_streaming(conn, &server, async |req| router.handle(req).await).await;
            OPEN.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// `/api/status`, `/metrics` (Prometheus text), and the store under `/kv`.
/// A read reserves the largest value from the server's memory budget
/// before it reads one (the server then holds the value's size until it is
/// sent), so many slow readers of large values get `503` rather than
/// exhaust the heap.
fn routes<'a>(server: &'a Server, store: &'a Store<Block>) -> Router<'a> {
    Router::new()
        .get("/api/status", async |_| {
            let status = format!(
                "{{\"open\":{},\"heap_used\":{},\"budget_used\":{}}}\n",
                OPEN.load(Ordering::Relaxed),
                unikernel::heap::stats().used,
                server.budget().used()
            );
            Response::new("200 OK", "application/json", status)
        })
        .get("/metrics", async |_| unikernel_http::metrics())
        .get("/kv", async |req| {
            let page = store.keys_after(req.query_param("after").map(str::as_bytes), LIST_PAGE);
            let keys: Vec<u8> = page.into_iter().flat_map(|k| k.into_iter().chain([b'\n'])).collect();
            Response::text("200 OK", keys)
        })
        .get("/kv/{*key}", async |req| {
            let Some(reservation) = server.budget().reserve(MAX_VALUE) else { return Response::unavailable() };
            let read = store.get(key(&req)).await.map(|v| match v {
                Some(value) => Response::new("200 OK", "application/octet-stream", value),
                None => Response::text("404 Not Found", "no such key\n"),
            });
            answer(read).with_reservation(reservation)
        })
        .put("/kv/{*key}", async |req| {
            answer(store.put(key(&req), &req.body).await.map(|()| Response::text("200 OK", "stored\n")))
        })
        .delete("/kv/{*key}", async |req| {
            answer(store.delete(key(&req)).await.map(|found| match found {
                true => Response::text("200 OK", "deleted\n"),
                false => Response::text("404 Not Found", "no such key\n"),
            }))
        })
}

/// The key: the rest of the path after `/kv/`, as sent.
fn key(req: &Request) -> &[u8] {
    req.param("key").unwrap_or("").as_bytes()
}

fn answer(result: Result<Response, StoreError>) -> Response {
    result.unwrap_or_else(|e| match e {
        StoreError::BadKey => Response::text("400 Bad Request", "keys are 1 to 1024 bytes\n"),
        StoreError::Full | StoreError::IndexFull { .. } => Response::text("507 Insufficient Storage", format!("{e}\n")),
        StoreError::ValueTooBig { .. } => Response::text("413 Content Too Large", format!("{e}\n")),
        e => Response::text("500 Internal Server Error", format!("{e}\n")),
    })
}
