//! Tracing: an HTTP server that counts its visits on the disk, built with
//! the `trace` feature so that its tasks, interrupts, timers, TCP state
//! changes and block requests, and the span around each visit, go to a
//! trace Perfetto opens.
//!
//! `cargo run --example traced --features trace -- --trace traced.json`,
//! then `curl http://127.0.0.1:8080/` a few times, stop it (Ctrl-C) and
//! open `traced.json` in <https://ui.perfetto.dev>.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use unikernel::prelude::*;
use unikernel_http::{Limits, Response, Server, serve};
use unikernel_net::Net;
use unikernel_storage::{Block, BlockDevice};

#[unikernel]
async fn main(net: Net, disk: Block) -> Result<(), Error> {
    let listener = net.tcp_listen(80).await?;
    let server = Server::new(Limits::default());
    unikernel::println!("traced: serving on port 80");
    loop {
        let (conn, _peer) = listener.accept().await?;
        let server = server.clone();
        spawn(async move {
            let _ = serve(conn, &server, async |_req| match visit(disk).await {
                Ok(visits) => Response::text("200 OK", alloc::format!("visits: {visits}\n")),
                Err(e) => Response::text("500 Internal Server Error", alloc::format!("{e}\n")),
            })
            .await;
        });
    }
}

/// Counts a visit in the disk's first sector, durably.
async fn visit(disk: Block) -> Result<u64, Error> {
    let _span = unikernel::trace_span!("visit");
    let mut sector = disk.read(0, alloc::vec![0; 512]).await?;
    let visits = u64::from_le_bytes(sector[..8].try_into().expect("8 bytes")) + 1;
    sector[..8].copy_from_slice(&visits.to_le_bytes());
    disk.write(0, sector).await?;
    disk.flush().await?;
    Ok(visits)
}
