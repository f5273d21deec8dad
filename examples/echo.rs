//! Echoes TCP and UDP on port 7.
//!
//! `cargo run --example echo -- --forward 7007:7 --forward udp:7007:7`,
//! then `nc 127.0.0.1 7007` (TCP) or `nc -u 127.0.0.1 7007` (UDP).
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;
use unikernel_net::{Net, TcpStream, UdpSocket};

const PORT: u16 = 7;

#[unikernel(net)]
async fn main(net: Net) -> Result<(), Error> {
    let (ip, len) = net.configured().await;
    let listener = net.tcp_listen(PORT).await?;
    let udp = net.udp_bind(PORT).await?;
    unikernel::println!("echo: listening on {ip}/{len} port {PORT} (TCP and UDP)");
    spawn(echo_udp(udp));
    loop {
        let (conn, _peer) = listener.accept().await?;
        spawn(echo_tcp(conn));
    }
}

async fn echo_tcp(mut conn: TcpStream) {
    let mut buf = [0; 4096];
    loop {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if conn.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
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
