//! What a guest restored from a snapshot must get right, served over HTTP
//! for the snapshot tests: `GET /` answers
//! `random=HEX token=HEX unix=SECONDS restores=N`, where `random` comes
//! from the entropy component on each request, `token` from the app's own
//! generator, seeded once at boot and again after each restore (the
//! pattern for any state an app derives from randomness), `unix` is the
//! wall clock and `restores` counts the restores this guest was told of.
//!
//! `cargo run --example restored -- --snapshot restored.snap`: the first
//! run boots and saves the snapshot once it listens; later runs restore it.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::format;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use unikernel::prelude::*;
use unikernel_entropy::Entropy;
use unikernel_http::{Limits, Request, Response, Server, serve};
use unikernel_net::Net;

const PORT: u16 = 80;

/// The app's generator (splitmix64), and whether a restore asked for a new seed.
static TOKEN: AtomicU64 = AtomicU64::new(0);
static RESEED: AtomicBool = AtomicBool::new(false);

#[unikernel]
async fn main(net: Net, rng: Entropy) -> Result<(), Error> {
    // Seeded before the guest listens, so a snapshot holds the seed.
    TOKEN.store(rng.u64()?, Ordering::Relaxed);
    // A hook runs in an interrupt handler: it only flags the work.
    unikernel::restore::on_restore(|| RESEED.store(true, Ordering::Release))?;
    let listener = net.tcp_listen(PORT).await?;
    let server = Server::new(Limits::default());
    loop {
        let (conn, _peer) = listener.accept().await?;
        let server = server.clone();
        spawn(async move {
            let _ = serve(conn, &server, async |req| route(&req, rng)).await;
        });
    }
}

fn route(req: &Request, rng: Entropy) -> Response {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/") => match report(rng) {
            Ok(body) => Response::text("200 OK", body),
            Err(e) => Response::text("500 Internal Server Error", format!("{e}\n")),
        },
        _ => Response::text("404 Not Found", "not found\n"),
    }
}

fn report(rng: Entropy) -> Result<alloc::string::String, Error> {
    if RESEED.swap(false, Ordering::AcqRel) {
        TOKEN.store(rng.u64()?, Ordering::Relaxed);
    }
    let unix = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Ok(format!(
        "random={:016x} token={:016x} unix={unix} restores={}\n",
        rng.u64()?,
        next_token(),
        unikernel::restore::count()
    ))
}

/// splitmix64's step: deterministic from its seed, as an app's own
/// generator is.
fn next_token() -> u64 {
    let seed = TOKEN.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed).wrapping_add(0x9e37_79b9_7f4a_7c15);
    let z = (seed ^ (seed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
