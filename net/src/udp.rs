//! UDP sockets.

use crate::NetError;
use crate::stack::{kick, with};
use alloc::vec;
use core::future::poll_fn;
use core::net::SocketAddr;
use core::task::Poll;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use unikernel_core::forward::{Listening, Protocol};

/// Datagrams queued per direction, and their total payload.
const PACKETS: usize = 32;
const PAYLOAD: usize = 32 * 1024;

fn buffer() -> udp::PacketBuffer<'static> {
    udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; PACKETS], vec![0; PAYLOAD])
}

/// A bound UDP socket.
pub struct UdpSocket {
    handle: SocketHandle,
    port: u16,
}

impl UdpSocket {
    /// Binds `port` (0: an ephemeral one). A chosen port is announced on
    /// the console, as a TCP listener is.
    pub(crate) fn bind(port: u16) -> Result<Self, NetError> {
        let (socket, address) = with(|s| {
            let port = if port == 0 { s.ephemeral_port() } else { port };
            let mut socket = udp::Socket::new(buffer(), buffer());
            socket.bind(port).map_err(|_| NetError::InvalidInput)?;
            Ok((Self { handle: s.sockets.add(socket), port }, s.ipv4().map(|(a, _)| a)))
        })?;
        if port != 0 {
            unikernel_core::println!("{}", Listening { protocol: Protocol::Udp, port, address });
        }
        Ok(socket)
    }

    fn with<R>(&self, f: impl FnOnce(&mut udp::Socket<'static>) -> R) -> R {
        with(|s| f(s.sockets.get_mut::<udp::Socket>(self.handle)))
    }

    /// The local port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for a datagram; copies it into `buf` (truncating a longer one)
    /// and returns its length and sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        poll_fn(|cx| {
            self.with(|socket| match socket.recv() {
                Ok((data, meta)) => {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    Poll::Ready(Ok((n, SocketAddr::new(meta.endpoint.addr.into(), meta.endpoint.port))))
                }
                Err(_) => {
                    socket.register_recv_waker(cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Sends `buf` to `to`, waiting while the send queue is full.
    pub async fn send_to(&self, buf: &[u8], to: SocketAddr) -> Result<(), NetError> {
        let to = crate::stack::endpoint(to)?;
        poll_fn(|cx| {
            self.with(|socket| match socket.send_slice(buf, to) {
                Ok(()) => {
                    kick();
                    Poll::Ready(Ok(()))
                }
                Err(udp::SendError::BufferFull) => {
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
                Err(udp::SendError::Unaddressable) => Poll::Ready(Err(NetError::Unreachable)),
            })
        })
        .await
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        with(|s| drop(s.sockets.remove(self.handle)));
    }
}
