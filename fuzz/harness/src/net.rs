//! Harnesses for net: the address configuration parsers, and the TCP/IP
//! stack's policy fed hostile frames over a queue of frames.

use crate::Target;
use std::collections::HashMap;
use std::net::SocketAddrV4;
use unikernel_net::engine::queue::{GUEST, GUEST_MAC, PORT, Rig, Segment, client, parse_tcp, tcp_frame};
use unikernel_net::engine::smoltcp::iface::SocketHandle;
use unikernel_net::engine::smoltcp::socket::{Socket, tcp};
use unikernel_net::engine::smoltcp::time::{Duration, Instant};
use unikernel_net::engine::smoltcp::wire::{IpAddress, IpEndpoint, TcpControl};
use unikernel_net::engine::{Limits, ListenerId};
use unikernel_net::{Config, Static, effective_in, max_connections, parse_cidr};

/// The fuzz targets of this module, by the names `fuzz/Cargo.toml` gives them.
pub const TARGETS: &[Target] = &[("net_config", config), ("net_stack", stack)];

/// The value of the last `key=value` word, as the kernel command line reads it.
fn value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_ascii_whitespace().filter_map(|w| w.strip_prefix(key)?.strip_prefix('=')).next_back()
}

/// The bytes as a kernel command line: the parsers never panic, accept only
/// what they can print back, and the command line wins over the built-in
/// configuration.
pub fn config(data: &[u8]) {
    let cmdline = String::from_utf8_lossy(data);
    for word in cmdline.split_ascii_whitespace().chain([&*cmdline]) {
        if let Some((address, len)) = parse_cidr(word) {
            assert!(len <= 32, "{word:?}");
            assert_eq!(parse_cidr(&format!("{address}/{len}")), Some((address, len)), "{word:?}");
        }
    }
    let built_in = Config::Static(Static { address: [10, 0, 2, 15].into(), prefix_len: 24, gateway: None, dns: None });
    match (value(&cmdline, "ip"), effective_in(built_in, |key| value(&cmdline, key))) {
        (None, result) => assert_eq!(result.ok(), Some(built_in)),
        (Some("dhcp"), result) => assert_eq!(result.ok(), Some(Config::Dhcp)),
        (Some(ip), Ok(Config::Static(s))) => {
            assert_eq!(parse_cidr(ip), Some((s.address, s.prefix_len)));
            let gateway = value(&cmdline, "gw").or_else(|| value(&cmdline, "gateway"));
            assert_eq!(s.gateway.map(|g| g.to_string()).as_deref(), gateway);
            assert_eq!(s.dns.map(|d| d.to_string()).as_deref(), value(&cmdline, "dns"));
        }
        (Some(_), Ok(Config::Dhcp)) => panic!("only `ip=dhcp` asks for DHCP: {cmdline:?}"),
        (Some(_), Err(_)) => {}
    }
    if let Ok(Some(n)) = max_connections(value(&cmdline, "max_connections")) {
        assert!(n > 0);
        assert_eq!(value(&cmdline, "max_connections").map(str::parse), Some(Ok(n)));
    }
}

/// The fuzzer's bytes, one at a time; zeros once they run out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.next(), self.next(), self.next(), self.next()])
    }
}

/// The stack under test with what the harness tracks of it.
struct Model {
    rig: Rig,
    listener: Option<ListenerId>,
    streams: Vec<SocketHandle>,
    /// When each half-open connection (by peer) was first seen.
    half_open_since: HashMap<SocketAddrV4, Instant>,
    /// A fresh source port per connection attempt, so a peer names one
    /// connection.
    attempts: u32,
}

/// The bytes as a sequence of peers' frames, raw frames, time steps and
/// application calls against a listener with a small backlog and budget.
/// After every poll: no connection stays half-open past its deadline, a
/// poll takes at most its frame budget, and the socket count stays within
/// the budget.
pub fn stack(data: &[u8]) {
    let mut bytes = Bytes(data);
    let limits = Limits {
        max_sockets: 2 + usize::from(bytes.next() % 16),
        half_open: Duration::from_secs(5),
        linger: Duration::from_secs(10),
        frames_per_poll: 1 + usize::from(bytes.next() % 8),
    };
    let mut model = Model {
        rig: Rig::new(limits),
        listener: None,
        streams: Vec::new(),
        half_open_since: HashMap::new(),
        attempts: 0,
    };
    let backlog = 1 + usize::from(bytes.next() % 6);
    model.listener = model.rig.stack.listen(PORT, backlog).ok();
    while !bytes.0.is_empty() {
        model.step(&mut bytes);
    }
    model.poll();
}

impl Model {
    fn step(&mut self, bytes: &mut Bytes) {
        match bytes.next() % 10 {
            0 => {
                let from = self.fresh_peer();
                self.rig.send(from, TcpControl::Syn, bytes.u32(), None);
            }
            1 => {
                // Finishes the handshake of the last SYN-ACK the stack sent.
                let mut sent = self.rig.device.tx.iter().filter_map(|f| parse_tcp(f));
                if let Some(s) = sent.rfind(|s| s.control == TcpControl::Syn) {
                    let seq = s.ack.unwrap_or(0);
                    self.rig.send(s.to, TcpControl::None, seq, Some(s.seq.wrapping_add(1)));
                }
            }
            2 => {
                let len = usize::from(bytes.next());
                let frame = (0..len).map(|_| bytes.next()).collect();
                self.rig.device.rx.push_back(frame);
            }
            3 => {
                // A segment from a peer the stack may know, any flags.
                let n = self.attempts.saturating_sub(u32::from(bytes.next() % 8));
                let control = [TcpControl::None, TcpControl::Psh, TcpControl::Fin, TcpControl::Rst]
                    [usize::from(bytes.next() % 4)];
                let segment = Segment {
                    from: peer(n),
                    to: SocketAddrV4::new(GUEST, PORT),
                    control,
                    seq: bytes.u32(),
                    ack: Some(bytes.u32()),
                };
                let payload: Vec<u8> = (0..bytes.next() % 64).map(|_| bytes.next()).collect();
                self.rig.device.rx.push_back(tcp_frame(GUEST_MAC, segment, &payload));
            }
            4 => self.rig.now += Duration::from_millis(u64::from(bytes.next()) * 50),
            5 => self.poll(),
            6 => {
                if let Some((handle, _)) = self.listener.and_then(|id| self.rig.accept(id)) {
                    self.streams.push(handle);
                }
            }
            7 => {
                if !self.streams.is_empty() {
                    let handle = self.streams.swap_remove(usize::from(bytes.next()) % self.streams.len());
                    if bytes.next().is_multiple_of(2) {
                        self.rig.stack.sockets.get_mut::<tcp::Socket>(handle).abort();
                    }
                    self.rig.stack.close_in_background(handle, self.rig.now);
                }
            }
            8 => {
                for _ in 0..bytes.next() % 64 {
                    let from = self.fresh_peer();
                    self.rig.send(from, TcpControl::Syn, 1, None);
                }
                self.poll();
            }
            _ => {
                if let Some(id) = self.listener {
                    self.rig.stack.set_max_connections(id, usize::from(bytes.next() % 16));
                }
            }
        }
    }

    fn fresh_peer(&mut self) -> SocketAddrV4 {
        self.attempts += 1;
        peer(self.attempts)
    }

    fn poll(&mut self) {
        let waiting = self.rig.device.rx.len();
        let polled = self.rig.poll();
        let limits = self.rig.stack.limits;
        assert!(polled.frames <= limits.frames_per_poll, "{polled:?}");
        assert_eq!(waiting - self.rig.device.rx.len(), polled.frames);
        assert_eq!(polled.more, polled.frames == limits.frames_per_poll, "{polled:?}");
        // Keeps the frames sent recently (the SYN-ACKs to answer), not all.
        let old = self.rig.device.tx.len().saturating_sub(64);
        self.rig.device.tx.drain(..old);
        self.check();
    }

    fn check(&mut self) {
        let (now, stack) = (self.rig.now, &mut self.rig.stack);
        let half_open = stack.limits.half_open;
        let tcp: Vec<(tcp::State, Option<SocketAddrV4>)> = (stack.sockets.iter())
            .filter_map(|(_, s)| match s {
                Socket::Tcp(t) => Some((t.state(), t.remote_endpoint().map(v4))),
                _ => None,
            })
            .collect();
        assert_eq!(tcp.len(), stack.tcp_sockets(), "the budget counts every TCP socket");
        assert!(
            tcp.len() <= stack.limits.max_sockets,
            "{} sockets over a budget of {}",
            tcp.len(),
            stack.limits.max_sockets
        );
        let mut seen = HashMap::new();
        for (state, peer) in tcp {
            if state != tcp::State::SynReceived {
                continue;
            }
            let peer = peer.expect("a half-open socket has a peer");
            let since = *self.half_open_since.get(&peer).unwrap_or(&now);
            assert!(now < since + half_open, "{peer} half-open since {since}, now {now}");
            seen.insert(peer, since);
        }
        if let Some(oldest) = seen.values().min() {
            let due = stack.poll_delay(now).expect("a deadline while half-open");
            assert!(now + due <= *oldest + half_open, "the next poll comes after the deadline");
        }
        self.half_open_since = seen;
    }
}

/// Peer number `n`, with a port of its own.
fn peer(n: u32) -> SocketAddrV4 {
    let base = client(n % 4096);
    SocketAddrV4::new(*base.ip(), 1024 + (n % 60000) as u16)
}

fn v4(endpoint: IpEndpoint) -> SocketAddrV4 {
    let IpAddress::Ipv4(ip) = endpoint.addr;
    SocketAddrV4::new(ip, endpoint.port)
}
