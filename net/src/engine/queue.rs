//! A device that is two queues of Ethernet frames, and the frames a test
//! needs to talk TCP to the stack through it: host unit tests and the
//! fuzzer drive [`Stack`](super::Stack) with these, without virtio-net.

use super::{Limits, ListenerId, Polled, Stack};
use crate::config::{Config, Static};
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use smoltcp::iface::SocketHandle;
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress,
    IpProtocol, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};

/// Frames waiting to be received (`rx`) and the frames the stack sent (`tx`).
#[derive(Default)]
pub struct QueueDevice {
    pub rx: VecDeque<Vec<u8>>,
    pub tx: Vec<Vec<u8>>,
}

pub struct Rx(Vec<u8>);

pub struct Tx<'a>(&'a mut Vec<Vec<u8>>);

impl phy::Device for QueueDevice {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((Rx(frame), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        self.0.push(frame);
        result
    }
}

/// The MAC address the peers of the test network use.
pub const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

fn ethernet(to: EthernetAddress, ethertype: EthernetProtocol, payload_len: usize) -> (Vec<u8>, EthernetRepr) {
    let repr = EthernetRepr { src_addr: PEER_MAC, dst_addr: to, ethertype };
    (vec![0; repr.buffer_len() + payload_len], repr)
}

/// An ARP request from `from` (at [`PEER_MAC`]) for `target`: teaches the
/// stack where `from` is.
pub fn arp_request(from: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: PEER_MAC,
        source_protocol_addr: from,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    let (mut buf, eth) = ethernet(EthernetAddress::BROADCAST, EthernetProtocol::Arp, arp.buffer_len());
    let mut frame = EthernetFrame::new_unchecked(&mut buf);
    eth.emit(&mut frame);
    arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    buf
}

/// A TCP segment, the fields of [`tcp_frame`] a test chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub from: SocketAddrV4,
    pub to: SocketAddrV4,
    pub control: TcpControl,
    pub seq: u32,
    pub ack: Option<u32>,
}

/// `segment` (with `payload`) in an Ethernet frame to `to_mac`.
pub fn tcp_frame(to_mac: EthernetAddress, segment: Segment, payload: &[u8]) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: segment.from.port(),
        dst_port: segment.to.port(),
        control: segment.control,
        seq_number: TcpSeqNumber(segment.seq as i32),
        ack_number: segment.ack.map(|a| TcpSeqNumber(a as i32)),
        window_len: 65535,
        window_scale: None,
        max_seg_size: (segment.control == TcpControl::Syn).then_some(1460),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    let ip = Ipv4Repr {
        src_addr: *segment.from.ip(),
        dst_addr: *segment.to.ip(),
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let (mut buf, eth) = ethernet(to_mac, EthernetProtocol::Ipv4, ip.buffer_len() + tcp.buffer_len());
    let caps = ChecksumCapabilities::default();
    let mut frame = EthernetFrame::new_unchecked(&mut buf);
    eth.emit(&mut frame);
    let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet, &caps);
    let (src, dst) = (IpAddress::Ipv4(ip.src_addr), IpAddress::Ipv4(ip.dst_addr));
    tcp.emit(&mut TcpPacket::new_unchecked(packet.payload_mut()), &src, &dst, &caps);
    buf
}

/// The TCP segment in `frame`, if it holds a valid one.
pub fn parse_tcp(frame: &[u8]) -> Option<Segment> {
    let frame = EthernetFrame::new_checked(frame).ok()?;
    if frame.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let caps = ChecksumCapabilities::default();
    let packet = Ipv4Packet::new_checked(frame.payload()).ok()?;
    let ip = Ipv4Repr::parse(&packet, &caps).ok()?;
    if ip.next_header != IpProtocol::Tcp {
        return None;
    }
    let (src, dst) = (IpAddress::Ipv4(ip.src_addr), IpAddress::Ipv4(ip.dst_addr));
    let tcp = TcpRepr::parse(&TcpPacket::new_checked(packet.payload()).ok()?, &src, &dst, &caps).ok()?;
    Some(Segment {
        from: SocketAddrV4::new(ip.src_addr, tcp.src_port),
        to: SocketAddrV4::new(ip.dst_addr, tcp.dst_port),
        control: tcp.control,
        seq: tcp.seq_number.0 as u32,
        ack: tcp.ack_number.map(|a| a.0 as u32),
    })
}

/// The guest's address, its gateway's, and its MAC.
pub const GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const GUEST_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
/// The port tests listen on.
pub const PORT: u16 = 80;

/// A stack on a [`QueueDevice`] at [`GUEST`], with the gateway's address
/// learnt, and a clock the test moves.
pub struct Rig {
    pub stack: Stack,
    pub device: QueueDevice,
    pub now: Instant,
}

/// A client behind the gateway (as spoofed flood sources are).
pub fn client(n: u32) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(0xc0a8_0000 | n), 40000 + (n % 1000) as u16)
}

impl Rig {
    /// The stack, configured with a static address.
    pub fn new(limits: Limits) -> Self {
        let mut device = QueueDevice::default();
        let config = Config::Static(Static { address: GUEST, prefix_len: 24, gateway: Some(GATEWAY), dns: None });
        let now = Instant::from_secs(1);
        let stack = Stack::new(config, GUEST_MAC.0, 7, limits, &mut device, now);
        let mut rig = Self { stack, device, now };
        rig.device.rx.push_back(arp_request(GATEWAY, GUEST));
        rig.poll();
        rig.device.tx.clear();
        rig
    }

    /// Polls the stack once at the rig's time.
    pub fn poll(&mut self) -> Polled {
        self.stack.poll(self.now, &mut self.device)
    }

    /// Queues a segment from `from` to the guest's [`PORT`].
    pub fn send(&mut self, from: SocketAddrV4, control: TcpControl, seq: u32, ack: Option<u32>) {
        let segment = Segment { from, to: SocketAddrV4::new(GUEST, PORT), control, seq, ack };
        self.device.rx.push_back(tcp_frame(GUEST_MAC, segment, &[]));
    }

    /// The segments the stack sent to `to` (and forgets them).
    pub fn replies(&mut self, to: SocketAddrV4) -> Vec<Segment> {
        let (mine, rest) = self.device.tx.drain(..).partition(|f| parse_tcp(f).is_some_and(|s| s.to == to));
        self.device.tx = rest;
        mine.iter().filter_map(|f| parse_tcp(f)).collect()
    }

    /// SYN, then ACK of the SYN-ACK; false if the stack did not answer with one.
    pub fn connect(&mut self, from: SocketAddrV4) -> bool {
        self.send(from, TcpControl::Syn, 1000, None);
        self.poll();
        let Some(syn_ack) = self.replies(from).into_iter().find(|s| s.control == TcpControl::Syn) else {
            return false;
        };
        self.send(from, TcpControl::None, 1001, Some(syn_ack.seq.wrapping_add(1)));
        self.poll();
        true
    }

    /// A connection of listener `id` ready to be accepted, with its peer.
    pub fn accept(&mut self, id: ListenerId) -> Option<(SocketHandle, SocketAddrV4)> {
        let (handle, peer) = self.stack.accept(id, futures_util::task::noop_waker_ref())?;
        let peer = peer.expect("connected");
        let smoltcp::wire::IpAddress::Ipv4(ip) = peer.addr;
        Some((handle, SocketAddrV4::new(ip, peer.port)))
    }

    /// Connections half-open (SYN received, handshake not finished).
    pub fn half_open(&self) -> usize {
        (self.stack.sockets.iter())
            .filter(|(_, s)| matches!(s, smoltcp::socket::Socket::Tcp(t) if t.state() == tcp::State::SynReceived))
            .count()
    }

    /// Sends a SYN from `from`: true if the stack answered with an RST.
    pub fn refused(&mut self, from: SocketAddrV4) -> bool {
        self.send(from, TcpControl::Syn, 1000, None);
        self.poll();
        self.replies(from).iter().any(|s| s.control == TcpControl::Rst)
    }
}
