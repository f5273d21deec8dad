//! The `net` API's semantics, the same on both targets: one suite, run in
//! QEMU on smoltcp (`cargo test --test net`) and hosted on the host's
//! sockets (`cargo test --target x86_64-unknown-linux-gnu --test net`).
//! The image is its own peer: it connects to its own address (loopback).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use core::net::SocketAddr;
use unikernel::component::Handle;
use unikernel::prelude::*;
use unikernel_net::{Net, NetError, TcpListener, TcpStream};

unikernel::test_main!(unikernel_net::net(ip = "10.0.2.15/24", gateway = "10.0.2.2"), forward = "none");

/// Long enough for a loopback handshake under a loaded emulator; a
/// connection that takes longer was not admitted. (Linux retries a dropped
/// SYN after 1 s and 3 s, but nobody accepts, so the queue stays full.)
const ADMITTED_WITHIN: Duration = Duration::from_secs(2);

fn net() -> Net {
    Net::take().expect("the net component started")
}

/// Where this image's own `port` is reached.
async fn own(net: Net, port: u16) -> SocketAddr {
    SocketAddr::new(net.configured().await.0.into(), port)
}

/// A connection from this image to itself: (client side, server side).
async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let net = net();
    let connect = net.tcp_connect(own(net, listener.port()).await);
    let client = timeout(Duration::from_secs(5), connect).await.expect("connected in time").expect("connected");
    let (server, _) = listener.accept().await.expect("accepted");
    (client, server)
}

#[unikernel::test]
async fn an_image_connects_to_its_own_address() {
    let listener = net().tcp_listen(47001).await.expect("listening");
    let (mut client, mut server) = pair(&listener).await;
    client.write(b"ping").await.expect("sent");
    let mut buf = [0; 8];
    let n = server.read(&mut buf).await.expect("received");
    assert_eq!(&buf[..n], b"ping");
}

#[unikernel::test]
async fn abort_resets_the_peer() {
    let listener = net().tcp_listen(47002).await.expect("listening");
    let (mut client, mut server) = pair(&listener).await;
    server.abort();
    let mut buf = [0; 8];
    let read = timeout(Duration::from_secs(5), client.read(&mut buf)).await.expect("the reset arrived");
    // A close would read as the end of the stream, Ok(0).
    assert_eq!(read, Err(NetError::ConnectionReset));
}

#[unikernel::test]
async fn a_full_backlog_admits_no_more_connections() {
    const BACKLOG: usize = 2;
    let net = net();
    let listener = net.tcp_listen_with_backlog(47003, BACKLOG).await.expect("listening");
    let to = own(net, listener.port()).await;
    let mut admitted = alloc::vec::Vec::new();
    for _ in 0..BACKLOG + 3 {
        // Nobody accepts. Bare metal refuses the excess with an RST; Linux
        // drops its SYN (the client would retry): either way, not admitted.
        if let Ok(Ok(stream)) = timeout(ADMITTED_WITHIN, net.tcp_connect(to)).await {
            admitted.push(stream);
        }
    }
    // Linux keeps one connection more than the backlog it was given.
    assert!((BACKLOG..=BACKLOG + 1).contains(&admitted.len()), "{} admitted", admitted.len());
}

#[unikernel::test]
async fn after_abort_this_side_reads_the_end_and_cannot_write() {
    let listener = net().tcp_listen(47004).await.expect("listening");
    let (mut client, _server) = pair(&listener).await;
    client.abort();
    let mut buf = [0; 8];
    assert_eq!(client.read(&mut buf).await, Ok(0));
    assert!(client.write(b"late").await.is_err());
}

#[unikernel::test]
async fn close_ends_the_peers_stream_and_this_side_still_reads() {
    let listener = net().tcp_listen(47005).await.expect("listening");
    let (mut client, mut server) = pair(&listener).await;
    client.close();
    let mut buf = [0; 8];
    assert_eq!(server.read(&mut buf).await, Ok(0), "a FIN, not a reset");
    server.write(b"bye").await.expect("the half-closed side still sends");
    let n = client.read(&mut buf).await.expect("the closing side still reads");
    assert_eq!(&buf[..n], b"bye");
}

#[unikernel::test]
async fn a_port_nobody_listens_on_refuses() {
    let net = net();
    let to = own(net, 47006).await;
    let refused = timeout(Duration::from_secs(5), net.tcp_connect(to)).await.expect("an answer in time");
    assert_eq!(refused.err(), Some(NetError::ConnectionRefused));
}

#[unikernel::test]
async fn a_datagram_to_its_own_address_arrives_with_the_sender() {
    let net = net();
    let receiver = net.udp_bind(47007).await.expect("bound");
    let sender = net.udp_bind(0).await.expect("bound");
    sender.send_to(b"hello", own(net, receiver.port()).await).await.expect("sent");
    let mut buf = [0; 8];
    let (n, from) =
        timeout(Duration::from_secs(5), receiver.recv_from(&mut buf)).await.expect("in time").expect("received");
    assert_eq!((&buf[..n], from.port()), (&b"hello"[..], sender.port()));
}

#[unikernel::test]
async fn connections_beyond_the_cap_get_no_service_until_one_closes() {
    let net = net();
    let listener = net.tcp_listen(47008).await.expect("listening");
    listener.set_max_connections(1);
    let (first, _first_server) = pair(&listener).await;
    let to = own(net, listener.port()).await;
    // Bare metal refuses the excess at the handshake; hosted, the kernel
    // completes it and `accept` resets it.
    let excess = timeout(ADMITTED_WITHIN, net.tcp_connect(to)).await.expect("an answer in time");
    if let Ok(mut excess) = excess {
        assert!(timeout(ADMITTED_WITHIN, listener.accept()).await.is_err(), "nothing to accept");
        let mut buf = [0; 8];
        assert_eq!(excess.read(&mut buf).await, Err(NetError::ConnectionReset));
    } else {
        assert_eq!(excess.err(), Some(NetError::ConnectionRefused));
    }
    drop((first, _first_server));
    // Room again once the open connection is gone (bare metal: closed).
    let admitted = async {
        loop {
            if let Ok(stream) = net.tcp_connect(to).await {
                return stream;
            }
            sleep(Duration::from_millis(10)).await;
        }
    };
    let _second = timeout(Duration::from_secs(5), admitted).await.expect("admitted after the first closed");
    timeout(Duration::from_secs(5), listener.accept()).await.expect("accepted in time").expect("accepted");
}

/// The stack's counters count a loopback exchange: bare metal only (hosted,
/// the host's kernel moves the packets).
#[cfg(target_os = "none")]
#[unikernel::test]
async fn net_metrics_count_a_loopback_exchange() {
    use unikernel_net::metrics::{LOOPBACK_FRAMES, TCP_ACCEPTED, TCP_CONNECTED};
    let before = (LOOPBACK_FRAMES.get(), TCP_ACCEPTED.get(), TCP_CONNECTED.get());
    let listener = net().tcp_listen(47009).await.expect("listening");
    let (mut client, mut server) = pair(&listener).await;
    client.write(b"ping").await.expect("sent");
    let mut buf = [0; 8];
    let n = server.read(&mut buf).await.expect("received");
    assert_eq!(&buf[..n], b"ping");
    assert_eq!((TCP_ACCEPTED.get(), TCP_CONNECTED.get()), (before.1 + 1, before.2 + 1));
    // SYN, SYN-ACK, ACK and the data segment at least.
    assert!(LOOPBACK_FRAMES.get() >= before.0 + 4, "{} -> {}", before.0, LOOPBACK_FRAMES.get());
}
