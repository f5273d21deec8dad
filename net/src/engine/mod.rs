//! The TCP/IP stack without its device: smoltcp's interface and sockets,
//! and the policy that keeps a hostile network from wedging or exhausting
//! it: half-open deadlines and SYN-flood recycling in each listener's
//! backlog, a connection budget derived from the heap, and bounded work per
//! poll. It is generic over smoltcp's `Device`, so the guest runs it on
//! virtio-net and host tests and the fuzzer on [`queue::QueueDevice`].

/// The smoltcp this stack is built on, for the tests and the fuzzer.
pub use smoltcp;

mod backlog;
mod ingress;
mod limits;
mod loopback;
pub mod queue;

use crate::config::Config;
use crate::waiters::Waiters;
use crate::{NetError, metrics};
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use backlog::{Backlog, Slot};
use core::net::Ipv4Addr;
use core::task::Waker;
pub use limits::{BUFFER, Limits, SOCKET_COST};
use loopback::Loopback;

unikernel_core::if_tracing! {
    mod tcp_states {
        //! TCP state changes for the trace: smoltcp has no callback for
        //! them, so each poll compares every connection with what it was.

        use alloc::vec::Vec;
        use smoltcp::iface::{SocketHandle, SocketSet};
        use smoltcp::socket::{Socket, tcp};
        use unikernel_core::sync::blocking::Mutex;

        static LAST: Mutex<Vec<(SocketHandle, tcp::State)>> = Mutex::new(Vec::new());

        pub fn trace(sockets: &SocketSet<'_>) {
            let mut last = LAST.lock();
            let mut now = Vec::with_capacity(last.len());
            for (handle, socket) in sockets.iter() {
                let Socket::Tcp(socket) = socket else { continue };
                let state = socket.state();
                let before = last.iter().find(|(h, _)| *h == handle).map_or(tcp::State::Closed, |&(_, s)| s);
                if state != before {
                    let local = socket.local_endpoint().map_or(socket.listen_endpoint().port, |e| e.port);
                    let remote = socket.remote_endpoint().map_or(0, |e| e.port);
                    let change = u64::from(remote) << 16 | (before as u64) << 8 | state as u64;
                    unikernel_core::trace_event!(TcpState, local, change);
                }
                now.push((handle, state));
            }
            *last = now;
        }
    }
}
use smoltcp::iface::{self, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::{dhcpv4, dns, tcp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, IpEndpoint, Ipv4Cidr};

/// Identifies a listener in its [`Stack`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerId(usize);

/// What one [`Stack::poll`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Polled {
    /// Frames received.
    pub frames: usize,
    /// The frame budget ran out: more may be waiting. Yield, then poll again.
    pub more: bool,
}

pub struct Stack {
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub dns: SocketHandle,
    pub limits: Limits,
    dhcp: Option<SocketHandle>,
    listeners: Vec<Option<Backlog>>,
    /// Dropped connections still closing, oldest first, with the time they
    /// are reset.
    closing: VecDeque<(SocketHandle, Instant)>,
    tcp_sockets: usize,
    next_port: u16,
    configured: Waiters,
    /// The frame being received, copied out of the device.
    frame: Vec<u8>,
    /// Frames the stack sent itself, received on the next poll.
    looped: VecDeque<Vec<u8>>,
    /// The frame being sent, before it is copied to the device.
    sent: Vec<u8>,
    /// Whether the stack has asked for its own address (see [`loopback`]).
    talks_to_itself: bool,
    /// How the interface gets its address, for [`Stack::restored`].
    config: Config,
    /// Restored: the listening ports are to be announced again once the
    /// interface has an address ([`Stack::announcements`]).
    announce: bool,
}

/// smoltcp's interface: its PRNG (initial sequence numbers, DHCP
/// transaction ids) seeded with `seed`, its neighbour cache empty.
fn interface<D: Device + ?Sized>(mac: HardwareAddress, seed: u64, device: &mut D, now: Instant) -> Interface {
    let mut config = iface::Config::new(mac);
    config.random_seed = seed;
    Interface::new(config, device, now)
}

/// A TCP socket with the stack's buffers.
fn new_tcp_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(tcp::SocketBuffer::new(vec![0; BUFFER]), tcp::SocketBuffer::new(vec![0; BUFFER]))
}

impl Stack {
    /// An interface with MAC `mac` on `device`, configured per `config`;
    /// `seed` randomizes initial sequence numbers and ephemeral ports.
    pub fn new<D: Device + ?Sized>(
        config: Config,
        mac: [u8; 6],
        seed: u64,
        limits: Limits,
        device: &mut D,
        now: Instant,
    ) -> Self {
        let iface = interface(HardwareAddress::Ethernet(EthernetAddress(mac)), seed, device, now);
        let mut sockets = SocketSet::new(Vec::new());
        let dns = sockets.add(dns::Socket::new(&[], Vec::new()));
        let dhcp = (config == Config::Dhcp).then(|| sockets.add(dhcpv4::Socket::new()));
        let mut stack = Self {
            iface,
            sockets,
            dns,
            limits,
            dhcp,
            listeners: Vec::new(),
            closing: VecDeque::new(),
            tcp_sockets: 0,
            next_port: 49152 + (seed % 16384) as u16,
            configured: Waiters::default(),
            frame: Vec::new(),
            looped: VecDeque::new(),
            sent: Vec::new(),
            talks_to_itself: false,
            config,
            announce: false,
        };
        if let Config::Static(s) = config {
            stack.apply(s.address, s.prefix_len, s.gateway, s.dns.as_slice());
        }
        stack
    }

    /// One round: the frames it sent itself last round in (see
    /// [`loopback`]), then at most `limits.frames_per_poll` frames from
    /// `device`; everything due out, listeners tended, closed connections
    /// reaped.
    pub fn poll<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) -> Polled {
        let own = core::mem::take(&mut self.looped);
        let (mut looped, mut sent) = (VecDeque::new(), core::mem::take(&mut self.sent));
        let HardwareAddress::Ethernet(mac) = self.iface.hardware_addr();
        let mut talks_to_itself = self.talks_to_itself;
        let mut device = Loopback {
            inner: device,
            mac,
            queue: &mut looped,
            scratch: &mut sent,
            talks_to_itself: &mut talks_to_itself,
        };
        let polled = self.poll_on(now, own, &mut device);
        (self.looped, self.sent, self.talks_to_itself) = (looped, sent, talks_to_itself);
        unikernel_core::if_tracing! { tcp_states::trace(&self.sockets); }
        polled
    }

    fn poll_on<D: Device + ?Sized>(&mut self, now: Instant, own: VecDeque<Vec<u8>>, device: &mut D) -> Polled {
        self.iface.poll_maintenance(now);
        // Outside the device's budget: a round sends itself a bounded number.
        for frame in own {
            crate::metrics::LOOPBACK_FRAMES.inc();
            self.ingest(now, device, &frame);
        }
        let mut frames = 0;
        let more = loop {
            if frames == self.limits.frames_per_poll {
                break true;
            }
            if !ingress::take(device, now, &mut self.frame) {
                break false;
            }
            frames += 1;
            let frame = core::mem::take(&mut self.frame);
            self.ingest(now, device, &frame);
            self.frame = frame;
        };
        // Each round sends at most one segment per socket; what is left
        // makes `poll_delay` zero.
        for _ in 0..self.limits.frames_per_poll {
            if self.iface.poll_egress(now, device, &mut self.sockets) == PollResult::None {
                break;
            }
        }
        self.dhcp_events();
        self.reap_closing(now);
        self.tend_listeners(now);
        self.refill_listeners();
        Polled { frames, more }
    }

    /// Hands smoltcp one received frame.
    fn ingest<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D, frame: &[u8]) {
        if let Some(port) = ingress::syn_port(frame) {
            self.make_room(port, now);
        }
        let mut one = ingress::OneFrame { inner: device, frame: Some(frame) };
        self.iface.poll_ingress_single(now, &mut one, &mut self.sockets);
    }

    /// How long until the next poll is due (`None`: only on new input;
    /// zero while frames it sent itself wait).
    pub fn poll_delay(&mut self, now: Instant) -> Option<Duration> {
        if !self.looped.is_empty() {
            return Some(Duration::ZERO);
        }
        let half_open = self.limits.half_open;
        let deadlines = self.closing.iter().map(|&(_, at)| at);
        let deadlines = deadlines.chain(self.listeners.iter().flatten().filter_map(|b| b.next_deadline(half_open)));
        let own = deadlines.min().map(|at| if at > now { at - now } else { Duration::ZERO });
        match (self.iface.poll_delay(now, &self.sockets), own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Lets a SYN to `port` find a listening socket if one can be freed.
    fn make_room(&mut self, port: u16, now: Instant) {
        if let Some(backlog) = self.listeners.iter_mut().flatten().find(|b| b.port == port) {
            backlog.make_room(&mut self.sockets, now);
        }
    }

    fn tend_listeners(&mut self, now: Instant) {
        for backlog in self.listeners.iter_mut().flatten() {
            if backlog.tend(&mut self.sockets, now, self.limits.half_open) {
                backlog.accepters.wake_all();
            }
        }
    }

    /// TCP sockets at once: listening, connected, and closing.
    pub fn tcp_sockets(&self) -> usize {
        self.tcp_sockets
    }

    /// Adds a TCP socket if the budget allows, resetting the oldest closing
    /// connection to make room.
    pub fn add_tcp(&mut self, socket: tcp::Socket<'static>) -> Result<SocketHandle, NetError> {
        while self.tcp_sockets >= self.limits.max_sockets {
            let Some((oldest, _)) = self.closing.pop_front() else {
                metrics::TCP_REFUSED.inc();
                return Err(NetError::Other("too many connections"));
            };
            self.remove_tcp(oldest);
        }
        self.tcp_sockets += 1;
        metrics::TCP_SOCKETS.set(self.tcp_sockets as u64);
        Ok(self.sockets.add(socket))
    }

    /// A fresh TCP socket with the stack's buffers, if the budget allows.
    pub fn new_tcp(&mut self) -> Result<SocketHandle, NetError> {
        self.add_tcp(new_tcp_socket())
    }

    fn remove_tcp(&mut self, handle: SocketHandle) {
        self.sockets.remove(handle);
        self.tcp_sockets -= 1;
        metrics::TCP_SOCKETS.set(self.tcp_sockets as u64);
    }

    /// Lets a dropped connection finish closing in the background.
    pub fn close_in_background(&mut self, handle: SocketHandle, now: Instant) {
        self.sockets.get_mut::<tcp::Socket>(handle).close();
        self.closing.push_back((handle, now + self.limits.linger));
    }

    /// Drops closed connections; resets those closing for too long.
    fn reap_closing(&mut self, now: Instant) {
        let mut done = Vec::new();
        self.closing.retain(|&(handle, deadline)| {
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            let closed = matches!(socket.state(), tcp::State::Closed | tcp::State::TimeWait);
            if !closed && now < deadline {
                return true;
            }
            if !closed {
                metrics::TCP_RESET.inc();
            }
            socket.abort(); // no-op once closed; a reset for a peer that went quiet
            done.push(handle);
            false
        });
        for handle in done {
            self.remove_tcp(handle);
        }
    }

    /// Listens on `port` with `backlog` sockets (fewer if the connection
    /// budget is short; none is an error).
    pub fn listen(&mut self, port: u16, backlog: usize) -> Result<ListenerId, NetError> {
        if port == 0 || backlog == 0 {
            return Err(NetError::InvalidInput);
        }
        if self.listeners.iter().flatten().any(|b| b.port == port) {
            return Err(NetError::AddrInUse);
        }
        let mut slots = Vec::with_capacity(backlog);
        for _ in 0..backlog {
            slots.push(Slot::new(self.listening_socket(port).ok()));
        }
        if slots.iter().all(|s| s.handle.is_none()) {
            return Err(NetError::Other("too many connections"));
        }
        let backlog = Backlog { port, slots, max_connections: usize::MAX, accepters: Waiters::default() };
        let free = self.listeners.iter().position(Option::is_none);
        let id = free.unwrap_or(self.listeners.len());
        match free {
            Some(i) => self.listeners[i] = Some(backlog),
            None => self.listeners.push(Some(backlog)),
        }
        Ok(ListenerId(id))
    }

    fn listening_socket(&mut self, port: u16) -> Result<SocketHandle, NetError> {
        let mut socket = new_tcp_socket();
        socket.listen(port).map_err(|_| NetError::InvalidInput)?;
        self.add_tcp(socket)
    }

    fn backlog(&mut self, id: ListenerId) -> &mut Backlog {
        self.listeners[id.0].as_mut().expect("a live listener")
    }

    /// Caps the connections of listener `id` at once, its backlog included.
    /// Listening sockets beyond the cap close at once.
    pub fn set_max_connections(&mut self, id: ListenerId, max: usize) {
        let backlog = self.backlog(id);
        backlog.max_connections = max;
        let port = backlog.port;
        let mut excess = self.connections_on(port).saturating_sub(max);
        let backlog = self.listeners[id.0].as_mut().expect("a live listener");
        let mut closed = Vec::new();
        for slot in backlog.slots.iter_mut().rev() {
            if excess == 0 {
                break;
            }
            if let Some(handle) = slot.handle
                && self.sockets.get::<tcp::Socket>(handle).state() == tcp::State::Listen
            {
                *slot = Slot::new(None);
                closed.push(handle);
                excess -= 1;
            }
        }
        for handle in closed {
            self.remove_tcp(handle);
        }
    }

    /// A connection of listener `id` that finished its handshake, with the
    /// peer; else `None`, and `waker` is woken when one may be ready.
    pub fn accept(&mut self, id: ListenerId, waker: &Waker) -> Option<(SocketHandle, Option<IpEndpoint>)> {
        let sockets = &mut self.sockets;
        let backlog = self.listeners[id.0].as_mut().expect("a live listener");
        let Some((_, handle)) = backlog.take_ready(sockets) else {
            backlog.accepters.register(waker);
            return None;
        };
        let peer = sockets.get::<tcp::Socket>(handle).remote_endpoint();
        metrics::TCP_ACCEPTED.inc();
        self.refill_listeners();
        Some((handle, peer))
    }

    /// Puts listening sockets in empty backlog slots, as far as the global
    /// budget and each listener's cap allow; a port with no listening
    /// socket refuses connections with an RST.
    fn refill_listeners(&mut self) {
        for id in 0..self.listeners.len() {
            let Some(backlog) = &self.listeners[id] else { continue };
            let (port, max) = (backlog.port, backlog.max_connections);
            let empty: Vec<usize> =
                (backlog.slots.iter().enumerate()).filter_map(|(i, s)| s.handle.is_none().then_some(i)).collect();
            if empty.is_empty() {
                continue;
            }
            let mut room = max.saturating_sub(self.connections_on(port));
            for i in empty {
                if room == 0 {
                    break;
                }
                let Ok(handle) = self.listening_socket(port) else { break };
                self.backlog(ListenerId(id)).slots[i] = Slot::new(Some(handle));
                room -= 1;
            }
        }
    }

    /// Open TCP sockets on local port `port`: its listening slots and the
    /// connections accepted from it that have not closed.
    fn connections_on(&self, port: u16) -> usize {
        (self.sockets.iter())
            .filter(|(_, s)| match s {
                smoltcp::socket::Socket::Tcp(t) => {
                    t.state() != tcp::State::Closed
                        && (t.local_endpoint().map(|e| e.port) == Some(port)
                            || t.listen_endpoint().port == port && t.state() == tcp::State::Listen)
                }
                _ => false,
            })
            .count()
    }

    /// Stops listener `id`: its unaccepted connections are reset.
    pub fn unlisten(&mut self, id: ListenerId, now: Instant) {
        let backlog = self.listeners[id.0].take().expect("a live listener");
        for handle in backlog.slots.iter().filter_map(|s| s.handle) {
            self.sockets.get_mut::<tcp::Socket>(handle).abort();
            self.close_in_background(handle, now);
        }
    }

    /// After a restore from a snapshot (see `unikernel_core::restore`),
    /// with a fresh `seed`: every connection the snapshot held is aborted
    /// (its peer talked to the guest that was saved, and the sequence
    /// numbers would repeat in every restore); a new interface forgets the
    /// neighbours and reseeds its PRNG; the address is set again, or asked
    /// of DHCP anew. Listeners stay, and are announced again once the
    /// interface has its address.
    pub fn restored<D: Device + ?Sized>(&mut self, seed: u64, device: &mut D, now: Instant) {
        let mut aborted = 0;
        for (_, socket) in self.sockets.iter_mut() {
            if let smoltcp::socket::Socket::Tcp(t) = socket
                && !matches!(t.state(), tcp::State::Listen | tcp::State::Closed)
            {
                t.abort();
                aborted += 1;
            }
        }
        self.iface = interface(self.iface.hardware_addr(), seed, device, now);
        self.next_port = 49152 + (seed % 16384) as u16;
        (self.looped, self.announce) = (VecDeque::new(), true);
        match self.config {
            Config::Static(s) => self.apply(s.address, s.prefix_len, s.gateway, s.dns.as_slice()),
            Config::Dhcp => {
                if let Some(dhcp) = self.dhcp {
                    self.sockets.get_mut::<dhcpv4::Socket>(dhcp).reset();
                }
            }
        }
        log::info!("net: restored: {aborted} connection(s) from the snapshot aborted, neighbours forgotten, reseeded");
    }

    /// The ports to announce again after [`Stack::restored`], once the
    /// interface has its address: TCP listeners, then bound UDP ports.
    pub fn announcements(&mut self) -> Vec<(unikernel_core::forward::Protocol, u16)> {
        use unikernel_core::forward::Protocol;
        if !self.announce || self.ipv4().is_none() {
            return Vec::new();
        }
        self.announce = false;
        let tcp = self.listeners.iter().flatten().map(|b| (Protocol::Tcp, b.port));
        let udp = self.sockets.iter().filter_map(|(_, s)| match s {
            smoltcp::socket::Socket::Udp(u) if u.is_open() => Some((Protocol::Udp, u.endpoint().port)),
            _ => None,
        });
        tcp.chain(udp).collect()
    }

    /// The next ephemeral port for an outgoing connection.
    pub fn ephemeral_port(&mut self) -> u16 {
        self.next_port = self.next_port.checked_add(1).unwrap_or(49152);
        self.next_port
    }

    /// The IPv4 address and prefix length, once configured.
    pub fn ipv4(&self) -> Option<(Ipv4Addr, u8)> {
        self.iface.ipv4_addr().and_then(|a| {
            self.iface.ip_addrs().iter().find_map(|c| match c {
                IpCidr::Ipv4(c) if c.address() == a => Some((a, c.prefix_len())),
                _ => None,
            })
        })
    }

    /// The address once configured; else `None`, and `waker` is woken when
    /// the configuration changes (every task that asked).
    pub fn configured(&mut self, waker: &Waker) -> Option<(Ipv4Addr, u8)> {
        let ipv4 = self.ipv4();
        if ipv4.is_none() {
            self.configured.register(waker);
        }
        ipv4
    }

    fn apply(&mut self, address: Ipv4Addr, prefix_len: u8, gateway: Option<Ipv4Addr>, servers: &[Ipv4Addr]) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            addrs.push(IpCidr::Ipv4(Ipv4Cidr::new(address, prefix_len))).expect("room for one address");
        });
        let routes = self.iface.routes_mut();
        routes.remove_default_ipv4_route();
        if let Some(gw) = gateway
            && routes.add_default_ipv4_route(gw).is_err()
        {
            log::warn!("net: no room for the default route via {gw}");
        }
        let servers: Vec<smoltcp::wire::IpAddress> = servers.iter().map(|s| (*s).into()).collect();
        self.sockets.get_mut::<dns::Socket>(self.dns).update_servers(&servers);
        self.configured.wake_all();
    }

    fn dhcp_events(&mut self) {
        let Some(handle) = self.dhcp else { return };
        let event = match self.sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
            None => return,
            Some(dhcpv4::Event::Configured(c)) => Some((c.address, c.router, c.dns_servers.clone())),
            Some(dhcpv4::Event::Deconfigured) => None,
        };
        match event {
            Some((cidr, router, servers)) => {
                log::info!("net: DHCP gave {cidr}, gateway {router:?}, dns {servers:?}");
                self.apply(cidr.address(), cidr.prefix_len(), router, &servers);
            }
            // smoltcp also reports this once at start, before any lease.
            None if self.ipv4().is_none() => {}
            None => {
                log::info!("net: DHCP lease lost");
                self.iface.update_ip_addrs(|a| a.clear());
                self.iface.routes_mut().remove_default_ipv4_route();
            }
        }
    }
}

#[cfg(test)]
mod tests;
