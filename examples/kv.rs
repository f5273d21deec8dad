//! A key-value service: the crash-safe store on the disk, over HTTP.
//!
//! `cargo run --example kv` (the runner creates a disk image on first use;
//! `--disk PATH` for another), then from the host:
//! `curl -X PUT --data-binary @file http://127.0.0.1:8080/kv/k`,
//! `curl http://127.0.0.1:8080/kv/k`, `curl -X DELETE ...`, and
//! `curl http://127.0.0.1:8080/kv` for the keys. A `PUT` or `DELETE` is
//! answered only once it is durable. `format` on the command line starts a
//! new store on a disk that holds something else.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

#[path = "common/http.rs"]
mod http;

use alloc::format;
use alloc::rc::Rc;
use alloc::vec::Vec;
use http::{Request, Response};
use unikernel::prelude::*;
use unikernel_net::Net;
use unikernel_storage::{Block, Store, StoreError};

const PORT: u16 = 80;
/// Largest value accepted.
const MAX_VALUE: usize = 1 << 20;

#[unikernel(net, block)]
async fn main(net: Net, disk: Block) -> Result<(), Error> {
    let store = match Store::open(disk).await {
        Err(StoreError::NotAStore) if unikernel::cmdline::args().any(|a| a == "format") => Store::format(disk).await?,
        other => other?,
    };
    let r = store.recovery();
    unikernel::println!(
        "kv: {} keys; replayed {} records, {} damaged bytes skipped, torn tail: {}, formatted: {}",
        store.keys().len(),
        r.records,
        r.damaged_bytes,
        r.torn_tail,
        r.formatted
    );
    let store = Rc::new(store);
    let (ip, len) = net.configured().await;
    let listener = net.tcp_listen_with_backlog(PORT, 16).await?;
    unikernel::println!("kv: serving on {ip}/{len} port {PORT}");
    loop {
        let (conn, _peer) = listener.accept().await?;
        let store = store.clone();
        spawn(async move {
            let _ = http::serve(conn, MAX_VALUE, async |req| handle(&store, req).await).await;
        });
    }
}

async fn handle(store: &Store<Block>, req: Request) -> Response {
    let key = req.path.strip_prefix("/kv/").map(str::as_bytes);
    let result = match (req.method.as_str(), key) {
        ("GET", None) if req.path == "/kv" => {
            let keys: Vec<u8> = store.keys().into_iter().flat_map(|k| k.into_iter().chain([b'\n'])).collect();
            Ok(Response::text("200 OK", keys))
        }
        ("GET" | "HEAD", Some(key)) => store.get(key).await.map(|v| match v {
            Some(value) => Response::new("200 OK", "application/octet-stream", value),
            None => Response::text("404 Not Found", "no such key\n"),
        }),
        ("PUT", Some(key)) => store.put(key, &req.body).await.map(|()| Response::text("200 OK", "stored\n")),
        ("DELETE", Some(key)) => store.delete(key).await.map(|found| match found {
            true => Response::text("200 OK", "deleted\n"),
            false => Response::text("404 Not Found", "no such key\n"),
        }),
        (_, Some(_)) => Ok(Response::text("405 Method Not Allowed", "GET, PUT or DELETE\n")),
        _ => Ok(Response::text("404 Not Found", "try /kv/<key>\n")),
    };
    result.unwrap_or_else(|e| match e {
        StoreError::BadKey => Response::text("400 Bad Request", "keys are 1 to 1024 bytes\n"),
        StoreError::Full => Response::text("507 Insufficient Storage", "the store is full\n"),
        e => Response::text("500 Internal Server Error", format!("{e}\n")),
    })
}
