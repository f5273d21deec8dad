//! The `http` example's page over HTTPS (TLS 1.3): `unikernel_http::serve`
//! runs unchanged over `unikernel_tls` streams. The certificate is a
//! self-signed one made by the build (`unikernel-tls`'s `self-signed`
//! feature); a real server would read its own from the disk.
//!
//! `cargo run --example https`, then `curl -k https://127.0.0.1:8443/`
//! (the image forwards host port 8443 to the guest's port 443).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

#[path = "shared/page.rs"]
mod page;

use alloc::vec;
use page::INDEX;
use unikernel::prelude::*;
use unikernel_entropy::Entropy;
use unikernel_http::{Response, Router, Server, serve};
use unikernel_net::Net;
use unikernel_tls::pki_types::{CertificateDer, PrivateKeyDer};
use unikernel_tls::{Acceptor, self_signed, server_config};

const PORT: u16 = 443;

#[unikernel(forward = "tcp:8443:443")]
async fn main(net: Net, rng: Entropy) -> Result<(), Error> {
    let key = PrivateKeyDer::try_from(self_signed::KEY).map_err(Error::msg)?;
    let config = server_config(rng, vec![CertificateDer::from(self_signed::CERT)], key, &["localhost"])
        .map_err(|e| Error::msg(alloc::format!("tls: {e}")))?;
    let tls = Acceptor::new(config, unikernel_tls::Limits::default());
    let server = Server::new(unikernel_http::Limits::default());
    let (ip, len) = net.configured().await;
    let listener = net.tcp_listen_with_backlog(PORT, 32).await?;
    unikernel::println!("https: serving on {ip}/{len} port {PORT}");
    loop {
        let (conn, _peer) = listener.accept().await?;
        let (tls, server) = (tls.clone(), server.clone());
        spawn(async move {
            // A refused handshake ends this connection only (counted in /metrics).
            if let Ok(stream) = tls.accept(conn).await {
                let router = Router::new()
                    .get("/", async |_| Response::new("200 OK", "text/html; charset=utf-8", INDEX))
                    .get("/metrics", async |_| unikernel_http::metrics());
                let _ = serve(stream, &server, async |req| router.handle(req).await).await;
            }
        });
    }
}
