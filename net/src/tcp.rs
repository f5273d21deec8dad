//! TCP: a listener with a backlog of listening sockets, and streams with
//! backpressure (a write waits for room in the send buffer, a read for
//! data).

use crate::NetError;
use crate::stack::{self, kick, with};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::poll_fn;
use core::net::SocketAddr;
use core::task::Poll;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, State};

/// Per-direction buffer of a connection: a 64 KiB window would need 128 KiB
/// per connection; 16 KiB keeps a thousand-connection server in a few MiB.
const BUFFER: usize = 16 * 1024;

fn new_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(tcp::SocketBuffer::new(vec![0; BUFFER]), tcp::SocketBuffer::new(vec![0; BUFFER]))
}

fn endpoint(e: smoltcp::wire::IpEndpoint) -> SocketAddr {
    SocketAddr::new(e.addr.into(), e.port)
}

/// A listening TCP port. Each of its `backlog` sockets takes one incoming
/// connection; `accept` hands it out and puts a fresh socket in its place.
pub struct TcpListener {
    port: u16,
    backlog: RefCell<Vec<SocketHandle>>,
}

impl TcpListener {
    pub(crate) fn bind(port: u16, backlog: usize) -> Result<Self, NetError> {
        if port == 0 || backlog == 0 {
            return Err(NetError::InvalidInput);
        }
        let handles = with(|s| {
            let taken = s.sockets.iter().any(|(_, socket)| match socket {
                smoltcp::socket::Socket::Tcp(t) => t.state() == State::Listen && t.listen_endpoint().port == port,
                _ => false,
            });
            if taken {
                return Err(NetError::AddrInUse);
            }
            (0..backlog).map(|_| listen(s, port)).collect()
        })?;
        Ok(Self { port, backlog: RefCell::new(handles) })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for a connection and returns it with the peer's address.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr), NetError> {
        poll_fn(|cx| {
            let mut backlog = self.backlog.borrow_mut();
            with(|s| {
                for slot in backlog.iter_mut() {
                    let socket = s.sockets.get_mut::<tcp::Socket>(*slot);
                    match socket.state() {
                        State::Listen | State::SynReceived => socket.register_recv_waker(cx.waker()),
                        State::Closed => socket.listen(self.port).map_err(|_| NetError::InvalidInput)?,
                        _ => {
                            // Established, or already closing: the application
                            // still gets it, to read what was sent.
                            let peer = socket.remote_endpoint().map(endpoint);
                            let handle = core::mem::replace(slot, listen(s, self.port)?);
                            let peer = peer.unwrap_or(SocketAddr::new([0, 0, 0, 0].into(), 0));
                            return Poll::Ready(Ok((TcpStream { handle }, peer)));
                        }
                    }
                }
                Poll::Pending
            })
        })
        .await
    }
}

fn listen(s: &mut stack::Stack, port: u16) -> Result<SocketHandle, NetError> {
    let mut socket = new_socket();
    socket.listen(port).map_err(|_| NetError::InvalidInput)?;
    Ok(s.sockets.add(socket))
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        with(|s| {
            for handle in self.backlog.borrow_mut().drain(..) {
                s.sockets.get_mut::<tcp::Socket>(handle).abort();
                s.close_in_background(handle);
            }
        });
    }
}

/// A TCP connection. Dropping it closes it gracefully in the background
/// (reset after 10 s if the peer does not finish).
pub struct TcpStream {
    handle: SocketHandle,
}

impl TcpStream {
    pub(crate) async fn connect(remote: SocketAddr) -> Result<Self, NetError> {
        let remote = stack::endpoint(remote)?;
        let handle = with(|s| {
            let port = s.ephemeral_port();
            let mut socket = new_socket();
            let cx = s.iface.context();
            socket.connect(cx, remote, port).map_err(|e| match e {
                tcp::ConnectError::Unaddressable => NetError::Unreachable,
                tcp::ConnectError::InvalidState => NetError::InvalidInput,
            })?;
            Ok(s.sockets.add(socket))
        })?;
        kick();
        let stream = Self { handle };
        poll_fn(|cx| {
            stream.with(|socket| match socket.state() {
                State::SynSent | State::SynReceived => {
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
                State::Closed => Poll::Ready(Err(NetError::ConnectionRefused)),
                _ => Poll::Ready(Ok(())),
            })
        })
        .await?;
        Ok(stream)
    }

    fn with<R>(&self, f: impl FnOnce(&mut tcp::Socket<'static>) -> R) -> R {
        with(|s| f(s.sockets.get_mut::<tcp::Socket>(self.handle)))
    }

    /// The peer's address, while connected.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.with(|s| s.remote_endpoint().map(endpoint))
    }

    /// Reads what has arrived into `buf`, waiting for at least one byte;
    /// `Ok(0)` is the end of the stream.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        if buf.is_empty() {
            return Ok(0);
        }
        poll_fn(|cx| {
            self.with(|socket| {
                if socket.can_recv() {
                    let n = socket.recv_slice(buf).map_err(|_| NetError::ConnectionReset)?;
                    kick(); // the window opened: tell the peer
                    Poll::Ready(Ok(n))
                } else if socket.may_recv() || matches!(socket.state(), State::SynReceived | State::SynSent) {
                    socket.register_recv_waker(cx.waker());
                    Poll::Pending
                } else {
                    Poll::Ready(Ok(0))
                }
            })
        })
        .await
    }

    /// Queues as much of `buf` as fits, waiting for room for at least one byte.
    pub async fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        if buf.is_empty() {
            return Ok(0);
        }
        poll_fn(|cx| {
            self.with(|socket| {
                if !socket.may_send() {
                    Poll::Ready(Err(if socket.state() == State::Closed {
                        NetError::ConnectionReset
                    } else {
                        NetError::BrokenPipe
                    }))
                } else if socket.can_send() {
                    let n = socket.send_slice(buf).map_err(|_| NetError::BrokenPipe)?;
                    kick();
                    Poll::Ready(Ok(n))
                } else {
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Waits until the peer acknowledged everything written.
    pub async fn flush(&mut self) -> Result<(), NetError> {
        poll_fn(|cx| {
            self.with(|socket| {
                if socket.send_queue() == 0 {
                    Poll::Ready(Ok(()))
                } else if socket.state() == State::Closed {
                    Poll::Ready(Err(NetError::ConnectionReset))
                } else {
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Sends FIN after the queued data: the peer reads end-of-stream; this
    /// side can still read.
    pub fn close(&mut self) {
        self.with(tcp::Socket::close);
        kick();
    }

    /// Resets the connection at once, discarding queued data.
    pub fn abort(&mut self) {
        self.with(tcp::Socket::abort);
        kick();
    }

    /// Resets the connection when the peer acknowledges nothing for
    /// `timeout` (None: never, the default).
    pub fn set_timeout(&mut self, timeout: Option<core::time::Duration>) {
        let timeout = timeout.map(|t| smoltcp::time::Duration::from_micros(t.as_micros() as u64));
        self.with(|s| s.set_timeout(timeout));
    }

    /// Sends keep-alive probes after `interval` of silence (None: off).
    pub fn set_keep_alive(&mut self, interval: Option<core::time::Duration>) {
        let interval = interval.map(|t| smoltcp::time::Duration::from_micros(t.as_micros() as u64));
        self.with(|s| s.set_keep_alive(interval));
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        with(|s| s.close_in_background(self.handle));
    }
}
