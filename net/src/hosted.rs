//! The hosted target's `net`: the same API on the host's sockets, for
//! developing a service as a Linux process (MirageOS's "unix" target).
//!
//! Sockets are non-blocking; when one would block, its task's waker is
//! parked with a reactor thread that waits on epoll (through `polling`) and
//! wakes it when the socket is ready. Name resolution and connecting, which
//! std only offers blocking, run on a short-lived thread each.
//!
//! Ports are reached where the runner's QEMU forwards put them: a listener
//! on port 80 binds host `127.0.0.1:8080` (the `UNIKERNEL_FORWARD` list,
//! default `tcp:8080:80`, as the runner reads it), any other port
//! `127.0.0.1:PORT`. Loopback, as QEMU's forwards: a development build is
//! not exposed to the network, and needs no root for port 80.

use crate::NetError;
use crate::config::Config;
use std::collections::HashMap;
use std::future::poll_fn;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Poll, Waker};
use unikernel_core::Error;
use unikernel_core::forward::{self, Forward, Protocol, Reachable};

/// Wakers waiting on one socket, for reading and for writing.
#[derive(Default)]
struct Waiting {
    read: Option<Waker>,
    write: Option<Waker>,
}

struct Reactor {
    poller: polling::Poller,
    waiting: Mutex<HashMap<usize, Waiting>>,
    next_key: Mutex<usize>,
}

fn reactor() -> &'static Reactor {
    static REACTOR: OnceLock<Reactor> = OnceLock::new();
    REACTOR.get_or_init(|| {
        let poller = polling::Poller::new().expect("epoll is available");
        std::thread::Builder::new().name("net-reactor".into()).spawn(run_reactor).expect("a thread");
        Reactor { poller, waiting: Mutex::new(HashMap::new()), next_key: Mutex::new(0) }
    })
}

fn run_reactor() {
    let mut events = polling::Events::new();
    loop {
        events.clear();
        if reactor().poller.wait(&mut events, None).is_err() {
            continue; // EINTR
        }
        let mut waiting = reactor().waiting.lock().expect("not poisoned");
        for event in events.iter() {
            let Some(w) = waiting.get_mut(&event.key) else { continue };
            // Oneshot: each event disarms the socket; whoever still waits re-arms it.
            for waker in [event.readable.then(|| w.read.take()), event.writable.then(|| w.write.take())] {
                if let Some(Some(waker)) = waker {
                    waker.wake();
                }
            }
        }
    }
}

/// A non-blocking std socket registered with the reactor.
struct Source<S: AsFd> {
    socket: S,
    key: usize,
}

impl<S: AsFd> Source<S> {
    fn new(socket: S) -> io::Result<Self> {
        let key = {
            let mut next = reactor().next_key.lock().expect("not poisoned");
            *next += 1;
            *next
        };
        // SAFETY: the socket is deleted from the poller in Drop, before it closes.
        unsafe { reactor().poller.add(&socket.as_fd(), polling::Event::none(key))? };
        reactor().waiting.lock().expect("not poisoned").insert(key, Waiting::default());
        Ok(Self { socket, key })
    }

    /// Runs `op` until it does not block; `write` says which readiness it waits for.
    async fn io<T>(&self, write: bool, mut op: impl FnMut(&S) -> io::Result<T>) -> io::Result<T> {
        poll_fn(|cx| match op(&self.socket) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => match self.wait(write, cx.waker()) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            other => Poll::Ready(other),
        })
        .await
    }

    /// Parks `waker` until the socket is readable (or writable) and arms
    /// the socket for whatever its waiters wait for.
    fn wait(&self, write: bool, waker: &Waker) -> io::Result<()> {
        let mut waiting = reactor().waiting.lock().expect("not poisoned");
        let w = waiting.get_mut(&self.key).expect("registered");
        *(if write { &mut w.write } else { &mut w.read }) = Some(waker.clone());
        reactor().poller.modify(self.socket.as_fd(), polling::Event::new(self.key, w.read.is_some(), w.write.is_some()))
    }
}

impl<S: AsFd> Drop for Source<S> {
    fn drop(&mut self) {
        let _ = reactor().poller.delete(self.socket.as_fd());
        reactor().waiting.lock().expect("not poisoned").remove(&self.key);
    }
}

fn net_error(e: io::Error) -> NetError {
    match e.kind() {
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::TimedOut => NetError::ConnectionReset,
        ErrorKind::ConnectionRefused => NetError::ConnectionRefused,
        ErrorKind::BrokenPipe | ErrorKind::NotConnected => NetError::BrokenPipe,
        ErrorKind::AddrInUse => NetError::AddrInUse,
        ErrorKind::AddrNotAvailable | ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
            NetError::Unreachable
        }
        ErrorKind::InvalidInput => NetError::InvalidInput,
        ErrorKind::PermissionDenied => NetError::Other("permission denied (ports below 1024 need root)"),
        _ => NetError::Other("host socket error"),
    }
}

/// Runs blocking `f` on its own thread and waits for it without blocking
/// the executor.
async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let slot: Arc<Mutex<(Option<T>, Option<Waker>)>> = Arc::default();
    let theirs = slot.clone();
    std::thread::spawn(move || {
        let result = f();
        let mut slot = theirs.lock().expect("not poisoned");
        slot.0 = Some(result);
        if let Some(waker) = slot.1.take() {
            waker.wake();
        }
    });
    poll_fn(|cx| {
        let mut slot = slot.lock().expect("not poisoned");
        match slot.0.take() {
            Some(result) => Poll::Ready(result),
            None => {
                slot.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await
}

/// The forwards from `UNIKERNEL_FORWARD`, set by `start`.
static FORWARDS: OnceLock<Vec<Forward>> = OnceLock::new();

pub fn start(config: Config) -> Result<(), Error> {
    log::info!("net: hosted, on the host's sockets (the address configuration {config:?} applies to images only)");
    let forwards = forwards_in(std::env::var(forward::ENV).ok().as_deref())?;
    let _ = FORWARDS.set(forwards);
    Ok(())
}

/// The forwards a `UNIKERNEL_FORWARD` value names: when unset or empty, the
/// application's (`#[unikernel(forward = ...)]`), else the runner's default.
fn forwards_in(value: Option<&str>) -> Result<Vec<Forward>, Error> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(forward::defaults().to_vec()),
        Some(list) => Forward::parse_list(list)
            .collect::<Result<_, _>>()
            .map_err(|e| Error::msg(format!("{}: {e}", forward::ENV))),
    }
}

/// The host address the application's `port` binds: its forward's, else
/// the same port on loopback.
fn host_address(forwards: &[Forward], protocol: Protocol, port: u16) -> SocketAddr {
    forward::to_guest(forwards, protocol, port)
        .map_or(SocketAddrV4::new(forward::HOST_ADDRESS, port), Forward::host_address)
        .into()
}

/// Where the application's `port` binds (see [`host_address`]).
fn address(protocol: Protocol, port: u16) -> SocketAddr {
    host_address(FORWARDS.get().map_or(forward::defaults(), Vec::as_slice), protocol, port)
}

/// Says where the application's `port` really listens: `bound` is the
/// socket's local address.
fn announce(protocol: Protocol, port: u16, bound: io::Result<SocketAddr>) {
    if let Ok(SocketAddr::V4(at)) = bound {
        unikernel_core::println!("net: listening on {}", Reachable { protocol, at, port });
    }
}

/// The handle `main` receives: opens sockets on the host.
#[derive(Clone, Copy, Debug)]
pub struct Net {
    _private: (),
}

impl Net {
    pub(crate) fn get() -> Result<Self, Error> {
        Ok(Self { _private: () })
    }

    /// A hosted process has no MAC of its own.
    pub fn mac(&self) -> [u8; 6] {
        [0; 6]
    }

    /// The host's kernel takes the device's interrupts.
    pub fn device_interrupts(&self) -> u64 {
        0
    }

    /// Hosted services are reached on the host's addresses; this reports loopback.
    pub fn ipv4(&self) -> Option<(Ipv4Addr, u8)> {
        Some((Ipv4Addr::LOCALHOST, 8))
    }

    /// The host's network is configured already.
    pub async fn configured(&self) -> (Ipv4Addr, u8) {
        (Ipv4Addr::LOCALHOST, 8)
    }

    /// Listens for TCP `port` on the host's loopback: on its forward's host
    /// port (see the module's documentation), else on `port`, with room
    /// for 8 connections waiting for `accept`, as on bare metal.
    pub async fn tcp_listen(&self, port: u16) -> Result<TcpListener, NetError> {
        self.tcp_listen_with_backlog(port, 8).await
    }

    /// As [`Net::tcp_listen`], with room for `backlog` unaccepted
    /// connections. Linux keeps one more than asked, and drops (rather than
    /// refuses) a SYN that finds the queue full: the client retries until
    /// there is room or its connect times out.
    pub async fn tcp_listen_with_backlog(&self, port: u16, backlog: usize) -> Result<TcpListener, NetError> {
        if port == 0 {
            return Err(NetError::InvalidInput);
        }
        let listener = std::net::TcpListener::bind(address(Protocol::Tcp, port)).map_err(net_error)?;
        // std listens with a backlog of 128; listening again resizes it.
        let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        rustix::net::listen(&listener, backlog).map_err(|e| net_error(e.into()))?;
        announce(Protocol::Tcp, port, listener.local_addr());
        listener.set_nonblocking(true).map_err(net_error)?;
        let source = Source::new(listener).map_err(net_error)?;
        Ok(TcpListener { source, port, open: Arc::default(), max: AtomicUsize::new(usize::MAX) })
    }

    /// Opens a TCP connection to `remote`.
    pub async fn tcp_connect(&self, remote: SocketAddr) -> Result<TcpStream, NetError> {
        let stream = off_thread(move || std::net::TcpStream::connect(remote)).await.map_err(net_error)?;
        TcpStream::new(stream)
    }

    /// A UDP socket for `port`, bound as [`Net::tcp_listen`] binds (so it
    /// talks to peers on this host only); 0: an ephemeral port on all host
    /// addresses, for a client.
    pub async fn udp_bind(&self, port: u16) -> Result<UdpSocket, NetError> {
        let socket = match port {
            0 => std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(net_error)?,
            port => {
                let socket = std::net::UdpSocket::bind(address(Protocol::Udp, port)).map_err(net_error)?;
                announce(Protocol::Udp, port, socket.local_addr());
                socket
            }
        };
        socket.set_nonblocking(true).map_err(net_error)?;
        let port = socket.local_addr().map_err(net_error)?.port();
        Ok(UdpSocket { source: Source::new(socket).map_err(net_error)?, port })
    }

    /// Resolves `name` with the host's resolver, IPv4 addresses only.
    pub async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, NetError> {
        let name = name.to_string();
        let found = off_thread(move || (name.as_str(), 0).to_socket_addrs().map(|a| a.collect::<Vec<_>>()))
            .await
            .map_err(|_| NetError::NotFound)?;
        let v4: Vec<IpAddr> = found.iter().map(SocketAddr::ip).filter(IpAddr::is_ipv4).collect();
        if v4.is_empty() { Err(NetError::NotFound) } else { Ok(v4) }
    }
}

/// A listening TCP port.
pub struct TcpListener {
    source: Source<std::net::TcpListener>,
    port: u16,
    /// Accepted connections not yet dropped, and their cap.
    open: Arc<AtomicUsize>,
    max: AtomicUsize,
}

/// Counts an accepted connection as open until it drops.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl TcpListener {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Caps the connections of this port at once; the excess is reset.
    /// Bare metal refuses it at the handshake; the host kernel completes
    /// the handshake itself, so the reset comes when `accept` takes it.
    pub fn set_max_connections(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// Waits for a connection and returns it with the peer's address.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr), NetError> {
        loop {
            let (stream, peer) = self.source.io(false, std::net::TcpListener::accept).await.map_err(net_error)?;
            if self.open.load(Ordering::Relaxed) >= self.max.load(Ordering::Relaxed) {
                // Closing with a zero linger resets the connection.
                let _ = rustix::net::sockopt::set_socket_linger(&stream, Some(core::time::Duration::ZERO));
                continue;
            }
            self.open.fetch_add(1, Ordering::Relaxed);
            let mut stream = TcpStream::new(stream)?;
            stream._open = Some(Open(self.open.clone()));
            return Ok((stream, peer));
        }
    }
}

/// A TCP connection.
pub struct TcpStream {
    source: Source<std::net::TcpStream>,
    /// Aborted here: reads end and writes fail, as on bare metal (Linux
    /// would report the reset this side sent).
    aborted: bool,
    /// Counted by its listener's cap while it lives.
    _open: Option<Open>,
}

impl TcpStream {
    fn new(stream: std::net::TcpStream) -> Result<Self, NetError> {
        stream.set_nonblocking(true).map_err(net_error)?;
        Ok(Self { source: Source::new(stream).map_err(net_error)?, aborted: false, _open: None })
    }

    /// The peer's address, while connected.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.source.socket.peer_addr().ok()
    }

    /// Reads what has arrived into `buf`, waiting for at least one byte;
    /// `Ok(0)` is the end of the stream.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        if self.aborted {
            return Ok(0);
        }
        self.source.io(false, |mut s| s.read(buf)).await.map_err(net_error)
    }

    /// Writes as much of `buf` as the socket takes, waiting for room.
    pub async fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        if self.aborted {
            return Err(NetError::BrokenPipe);
        }
        self.source.io(true, |mut s| s.write(buf)).await.map_err(net_error)
    }

    /// The host kernel sends on its own; nothing to wait for.
    pub async fn flush(&mut self) -> Result<(), NetError> {
        Ok(())
    }

    /// Sends FIN; this side can still read.
    pub fn close(&mut self) {
        let _ = self.source.socket.shutdown(std::net::Shutdown::Write);
    }

    /// Resets the connection at once, discarding queued data: the peer
    /// reads an error, not the end of the stream.
    pub fn abort(&mut self) {
        // Connecting to AF_UNSPEC disconnects: Linux sends an RST and keeps
        // the descriptor, which stays registered until the stream drops.
        let _ = rustix::net::connect_unspec(&self.source.socket);
        self.aborted = true;
    }

    /// Resets the connection when the peer acknowledges nothing for
    /// `timeout` (None: never, the default), as on bare metal: Linux's
    /// `TCP_USER_TIMEOUT`.
    pub fn set_timeout(&mut self, timeout: Option<core::time::Duration>) {
        let _ = rustix::net::sockopt::set_tcp_user_timeout(&self.source.socket, user_timeout_ms(timeout));
    }

    /// Sends keep-alive probes after `interval` of silence, and every
    /// `interval` after (None: off), as on bare metal.
    pub fn set_keep_alive(&mut self, interval: Option<core::time::Duration>) {
        use rustix::net::sockopt;
        let socket = &self.source.socket;
        if let Some(interval) = interval {
            // The kernel counts whole seconds, at least one.
            let interval = interval.max(core::time::Duration::from_secs(1));
            let _ = sockopt::set_tcp_keepidle(socket, interval);
            let _ = sockopt::set_tcp_keepintvl(socket, interval);
        }
        let _ = sockopt::set_socket_keepalive(socket, interval.is_some());
    }
}

/// `TCP_USER_TIMEOUT`'s value for `timeout`: 0 is the kernel's default
/// (never), so a shorter timeout than a millisecond rounds up to one.
fn user_timeout_ms(timeout: Option<core::time::Duration>) -> u32 {
    timeout.map_or(0, |t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX).max(1))
}

/// A bound UDP socket.
pub struct UdpSocket {
    source: Source<std::net::UdpSocket>,
    port: u16,
}

impl UdpSocket {
    /// The local port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for a datagram; copies it into `buf` (truncating a longer one).
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        self.source.io(false, |s| s.recv_from(buf)).await.map_err(net_error)
    }

    /// Sends `buf` to `to`.
    pub async fn send_to(&self, buf: &[u8], to: SocketAddr) -> Result<(), NetError> {
        self.source.io(true, |s| s.send_to(buf, to)).await.map(drop).map_err(net_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_bind_their_forward_or_themselves_on_loopback() {
        let forwards = forwards_in(None).unwrap();
        assert_eq!(host_address(&forwards, Protocol::Tcp, 80), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(host_address(&forwards, Protocol::Tcp, 7), "127.0.0.1:7".parse().unwrap());
        assert_eq!(host_address(&forwards, Protocol::Udp, 80), "127.0.0.1:80".parse().unwrap(), "TCP only");
        let forwards = forwards_in(Some("9000:80,udp:7007:7")).unwrap();
        assert_eq!(host_address(&forwards, Protocol::Tcp, 80), "127.0.0.1:9000".parse().unwrap());
        assert_eq!(host_address(&forwards, Protocol::Udp, 7), "127.0.0.1:7007".parse().unwrap());
        assert_eq!(forwards_in(Some("")).unwrap(), [forward::DEFAULT], "empty is unset, as for the runner");
    }

    #[test]
    fn timeout_and_keep_alive_are_the_host_sockets_own() {
        use core::time::Duration;
        use rustix::net::sockopt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut stream = TcpStream::new(std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap()).unwrap();
        // A second descriptor of the same socket, to read its options.
        let socket = stream.source.socket.try_clone().unwrap();
        // The kernel resets the connection when sent data stays unacknowledged this long.
        stream.set_timeout(Some(Duration::from_millis(1500)));
        assert_eq!(sockopt::tcp_user_timeout(&socket).unwrap(), 1500);
        stream.set_timeout(Some(Duration::from_micros(1)));
        assert_eq!(sockopt::tcp_user_timeout(&socket).unwrap(), 1, "not 0, which is never");
        stream.set_timeout(None);
        assert_eq!(sockopt::tcp_user_timeout(&socket).unwrap(), 0);
        stream.set_keep_alive(Some(Duration::from_secs(7)));
        assert!(sockopt::socket_keepalive(&socket).unwrap());
        assert_eq!(sockopt::tcp_keepidle(&socket).unwrap(), Duration::from_secs(7));
        assert_eq!(sockopt::tcp_keepintvl(&socket).unwrap(), Duration::from_secs(7));
        stream.set_keep_alive(None);
        assert!(!sockopt::socket_keepalive(&socket).unwrap());
    }

    #[test]
    fn a_bad_forward_list_names_the_variable_and_the_entry() {
        let err = forwards_in(Some("8080:80,80")).unwrap_err().to_string();
        assert!(err.contains("UNIKERNEL_FORWARD") && err.contains("`80`"), "{err}");
    }
}
