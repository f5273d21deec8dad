//! TCP: a listener with a backlog of listening sockets, and streams with
//! backpressure (a write waits for room in the send buffer, a read for
//! data).

use crate::NetError;
use crate::engine::ListenerId;
use crate::stack::{self, kick, with};
use core::future::poll_fn;
use core::net::SocketAddr;
use core::task::Poll;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, State};
use unikernel_core::forward::{Listening, Protocol};

fn endpoint(e: smoltcp::wire::IpEndpoint) -> SocketAddr {
    SocketAddr::new(e.addr.into(), e.port)
}

/// A listening TCP port. Each of its `backlog` sockets takes one incoming
/// connection; `accept` hands it out and puts a fresh socket in its place.
/// A connection that stays half-open (no final ACK) for 5 s frees its place
/// again, and under a SYN flood the oldest half-open one gives way, so
/// clients that finish their handshake keep getting in. Connections beyond
/// the stack's budget (half the heap, or `max_connections=N` on the kernel
/// command line) or the listener's own cap are refused with an RST.
pub struct TcpListener {
    port: u16,
    id: ListenerId,
}

impl TcpListener {
    /// Listens, and says so on the console (whatever the log level): the
    /// runner opens the port's host forward when it reads the line.
    pub(crate) fn bind(port: u16, backlog: usize) -> Result<Self, NetError> {
        let (id, address) = with(|s| Ok::<_, NetError>((s.listen(port, backlog)?, s.ipv4().map(|(a, _)| a))))?;
        unikernel_core::println!("{}", Listening { protocol: Protocol::Tcp, port, address });
        Ok(Self { port, id })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Caps the connections of this port at once (accepted and not yet
    /// closed, plus the backlog); the excess is refused with an RST.
    pub fn set_max_connections(&self, max: usize) {
        with(|s| s.set_max_connections(self.id, max));
    }

    /// Waits for a connection and returns it with the peer's address.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr), NetError> {
        let (handle, peer) =
            poll_fn(|cx| with(|s| s.accept(self.id, cx.waker())).map_or(Poll::Pending, Poll::Ready)).await;
        let peer = peer.map_or(SocketAddr::new([0, 0, 0, 0].into(), 0), endpoint);
        Ok((TcpStream { handle, closed: false }, peer))
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        with(|s| s.unlisten(self.id, stack::now()));
        kick();
    }
}

/// A TCP connection. Dropping it closes it gracefully in the background
/// (reset after 10 s if the peer does not finish).
pub struct TcpStream {
    handle: SocketHandle,
    /// This side closed or aborted: a closed socket then ended as asked.
    /// smoltcp reports a reset as the closed state alone.
    closed: bool,
}

/// What a read or write finds on a socket that can do neither: a socket
/// closed without this side closing it was reset (by the peer, or by the
/// timeout) rather than ended by a FIN.
fn ended(socket: &tcp::Socket, closed_here: bool, otherwise: Result<usize, NetError>) -> Result<usize, NetError> {
    if socket.state() == State::Closed && !closed_here { Err(NetError::ConnectionReset) } else { otherwise }
}

impl TcpStream {
    pub(crate) async fn connect(remote: SocketAddr) -> Result<Self, NetError> {
        let remote = stack::endpoint(remote)?;
        let handle = with(|s| {
            let port = s.ephemeral_port();
            let handle = s.new_tcp()?;
            let cx = s.iface.context();
            let connected = s.sockets.get_mut::<tcp::Socket>(handle).connect(cx, remote, port);
            connected.map_err(|e| {
                s.close_in_background(handle, stack::now());
                match e {
                    tcp::ConnectError::Unaddressable => NetError::Unreachable,
                    tcp::ConnectError::InvalidState => NetError::InvalidInput,
                }
            })?;
            Ok::<_, NetError>(handle)
        })?;
        kick();
        let stream = Self { handle, closed: false };
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
        crate::metrics::TCP_CONNECTED.inc();
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
        let closed = self.closed;
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
                    Poll::Ready(ended(socket, closed, Ok(0)))
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
        let closed = self.closed;
        poll_fn(|cx| {
            self.with(|socket| {
                if !socket.may_send() {
                    Poll::Ready(ended(socket, closed, Err(NetError::BrokenPipe)))
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
        self.closed = true;
        self.with(tcp::Socket::close);
        kick();
    }

    /// Resets the connection at once, discarding queued data.
    pub fn abort(&mut self) {
        self.closed = true;
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
        with(|s| s.close_in_background(self.handle, stack::now()));
        kick();
    }
}
