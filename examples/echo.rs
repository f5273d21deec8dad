//! Echoes TCP and UDP on port 7.
//!
//! `cargo run --example echo`, then `nc 127.0.0.1 7007` (TCP) or
//! `nc -u 127.0.0.1 7007` (UDP): the image asks for both forwards, which
//! `--forward` replaces.
//!
//! A TCP connection is closed after `idle=SECONDS` (default 60) without a
//! byte from the peer or room to send it one, and reset when a peer that
//! vanished stops answering keep-alive probes: a client that goes away
//! never pins a task and its buffers for good.
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;
use unikernel_net::{Net, TcpStream, UdpSocket};

const PORT: u16 = 7;
/// Silence after which the stack probes the peer, and after which, with no
/// answer at all, it resets the connection.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
const DEAD_PEER: Duration = Duration::from_secs(45);

#[unikernel(forward = "tcp:7007:7, udp:7007:7")]
async fn main(net: Net) -> Result<(), Error> {
    let idle = match unikernel::cmdline::value("idle") {
        Some(s) => Duration::from_secs(s.parse().map_err(|_| Error::msg("`idle=SECONDS` expects a number"))?),
        None => Duration::from_secs(60),
    };
    let (ip, len) = net.configured().await;
    let listener = net.tcp_listen(PORT).await?;
    let udp = net.udp_bind(PORT).await?;
    unikernel::println!("echo: listening on {ip}/{len} port {PORT} (TCP and UDP), idle timeout {idle:?}");
    spawn(echo_udp(udp));
    loop {
        let (conn, _peer) = listener.accept().await?;
        spawn(echo_tcp(conn, idle));
    }
}

async fn echo_tcp(mut conn: TcpStream, idle: Duration) {
    conn.set_keep_alive(Some(KEEP_ALIVE));
    conn.set_timeout(Some(DEAD_PEER));
    let mut buf = [0; 4096];
    // Ends on end of stream, an error, or `idle` without a byte (FIN).
    while let Ok(Ok(n @ 1..)) = timeout(idle, conn.read(&mut buf)).await {
        if !matches!(timeout(idle, conn.write_all(&buf[..n])).await, Ok(Ok(()))) {
            // Failed, or the peer stopped reading: what is queued cannot go.
            conn.abort();
            return;
        }
    }
    conn.close();
}

async fn echo_udp(udp: UdpSocket) {
    let mut buf = [0; 2048];
    while let Ok((n, from)) = udp.recv_from(&mut buf).await {
        let _ = udp.send_to(&buf[..n], from).await;
    }
}
