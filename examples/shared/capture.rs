//! The one-page server of the capture examples (`capture`,
//! `capture_fast`), which differ only in how the capture leaves the guest.

use unikernel::prelude::*;
use unikernel_http::{Limits, Response, Server, serve};
use unikernel_net::Net;

/// Answers every request with the path it asked for; `name` starts the
/// line that says where it serves.
pub async fn serve_captured(net: Net, name: &str) -> Result<(), Error> {
    let listener = net.tcp_listen(80).await?;
    let server = Server::new(Limits::default());
    unikernel::println!("{name}: serving on port 80");
    loop {
        let (conn, _peer) = listener.accept().await?;
        let server = server.clone();
        spawn(async move {
            let _ =
                serve(conn, &server, async |req| Response::text("200 OK", alloc::format!("captured {}\n", req.path)))
                    .await;
        });
    }
}
