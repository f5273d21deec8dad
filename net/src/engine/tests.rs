//! The stack's policy against hostile peers, over a queue of frames.

use super::Limits;
use super::queue::{GUEST, PORT, Rig, client};
use smoltcp::socket::tcp;
use smoltcp::wire::TcpControl;

fn limits() -> Limits {
    Limits::for_heap(64 << 20)
}

#[test]
fn half_open_connections_expire() {
    let mut rig = Rig::new(limits());
    rig.stack.listen(PORT, 4).unwrap();
    for n in 0..4 {
        rig.send(client(n), TcpControl::Syn, 1000, None);
    }
    rig.poll();
    assert_eq!(rig.half_open(), 4, "one per slot");
    let deadline = rig.stack.poll_delay(rig.now).expect("a deadline");
    assert!(deadline <= rig.stack.limits.half_open, "{deadline}");
    rig.now += rig.stack.limits.half_open;
    rig.poll();
    assert_eq!(rig.half_open(), 0, "every half-open connection gave its place back");
}

#[test]
fn a_syn_flood_does_not_lock_out_a_client_that_finishes_its_handshake() {
    let mut rig = Rig::new(limits());
    let id = rig.stack.listen(PORT, 4).unwrap();
    for n in 0..200 {
        rig.send(client(n), TcpControl::Syn, 1000, None);
    }
    while rig.poll().more {}
    let legit = client(9999);
    assert!(rig.connect(legit), "a SYN-ACK for the client, not an RST");
    assert_eq!(rig.accept(id).map(|(_, peer)| peer), Some(legit));
}

#[test]
fn connections_beyond_the_budget_are_refused_and_closing_ones_make_room() {
    let mut rig = Rig::new(Limits { max_sockets: 6, ..limits() });
    let id = rig.stack.listen(PORT, 2).unwrap();
    let mut streams = Vec::new();
    for n in 0..6 {
        assert!(rig.connect(client(n)), "connection {n} within the budget");
        streams.push(rig.accept(id).expect("accepted").0);
    }
    assert_eq!(rig.stack.tcp_sockets(), 6);
    assert!(rig.refused(client(6)), "an RST beyond the budget");
    assert!(rig.accept(id).is_none());

    // One closes in the background: it still counts until the budget is
    // needed, then it is reset to make room.
    rig.stack.close_in_background(streams.remove(0), rig.now);
    rig.poll();
    assert!(rig.connect(client(7)), "room made by resetting the closing connection");
    assert_eq!(rig.accept(id).map(|(_, p)| p), Some(client(7)));
    assert!(rig.stack.tcp_sockets() <= 6);
}

#[test]
fn a_listener_cap_refuses_the_excess_and_frees_with_closes() {
    let mut rig = Rig::new(limits());
    let id = rig.stack.listen(PORT, 2).unwrap();
    rig.stack.set_max_connections(id, 3);
    let mut streams = Vec::new();
    for n in 0..3 {
        assert!(rig.connect(client(n)), "connection {n} within the cap");
        streams.push(rig.accept(id).expect("accepted").0);
    }
    assert!(rig.refused(client(3)), "an RST beyond the listener's cap");
    let closed = streams.pop().unwrap();
    rig.stack.sockets.get_mut::<tcp::Socket>(closed).abort();
    rig.stack.close_in_background(closed, rig.now);
    rig.poll();
    rig.poll();
    assert!(rig.connect(client(4)), "served again once one closed");
}

#[test]
fn a_poll_takes_a_bounded_number_of_frames() {
    let mut rig = Rig::new(limits());
    rig.stack.listen(PORT, 8).unwrap();
    for n in 0..100 {
        rig.send(client(n), TcpControl::Syn, 1000, None);
    }
    let budget = rig.stack.limits.frames_per_poll;
    let polled = rig.poll();
    assert_eq!((polled.frames, polled.more), (budget, true));
    assert_eq!(rig.device.rx.len(), 100 - budget);
    while rig.poll().more {}
    assert!(rig.device.rx.is_empty());
}

#[test]
fn budget_follows_the_heap() {
    let small = Limits::for_heap(2 << 20).max_sockets;
    assert!((20..40).contains(&small), "{small}");
    assert!(Limits::for_heap(64 << 20).max_sockets >= 900);
}

#[test]
fn the_stack_connects_to_its_own_address_and_nothing_else_is_looped() {
    let mut rig = Rig::new(limits());
    let id = rig.stack.listen(PORT, 1).unwrap();
    let handle = rig.stack.new_tcp().unwrap();
    let port = rig.stack.ephemeral_port();
    let cx = rig.stack.iface.context();
    rig.stack.sockets.get_mut::<tcp::Socket>(handle).connect(cx, (GUEST, PORT), port).unwrap();
    // ARP request and reply, SYN, SYN-ACK, ACK: one poll each at most.
    for _ in 0..8 {
        rig.poll();
    }
    assert_eq!(rig.stack.sockets.get::<tcp::Socket>(handle).state(), tcp::State::Established);
    let (_, peer) = rig.accept(id).expect("the listener got the connection");
    assert_eq!((*peer.ip(), peer.port()), (GUEST, port));
    let own = core::net::SocketAddrV4::new(GUEST, PORT);
    assert!(rig.replies(own).is_empty(), "frames to itself stay off the wire");
    // A client elsewhere is answered on the wire.
    assert!(rig.connect(client(1)), "a SYN-ACK left by the device");
    assert!(rig.stack.talks_to_itself, "asking for its own address switched the copy on");
}

#[test]
fn a_server_that_never_talks_to_itself_sends_straight_to_the_device() {
    let mut rig = Rig::new(limits());
    let id = rig.stack.listen(PORT, 2).unwrap();
    assert!(rig.connect(client(0)));
    assert_eq!(rig.accept(id).map(|(_, peer)| peer), Some(client(0)));
    assert!(!rig.stack.talks_to_itself, "no frame of it went through the copy");
}

#[test]
fn a_cap_below_the_backlog_holds_at_once() {
    let mut rig = Rig::new(limits());
    let id = rig.stack.listen(PORT, 4).unwrap();
    rig.stack.set_max_connections(id, 1);
    assert!(rig.connect(client(0)));
    assert!(rig.refused(client(1)), "an RST beyond the cap, though the backlog had room");
    assert_eq!(rig.accept(id).map(|(_, peer)| peer), Some(client(0)));
}

/// The gateway's MAC asked for in one of `frames`.
fn asks_for_gateway<'a>(frames: impl IntoIterator<Item = &'a Vec<u8>>) -> bool {
    use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol};
    frames.into_iter().any(|f| {
        let Ok(frame) = EthernetFrame::new_checked(f.as_slice()) else { return false };
        let arp = ArpPacket::new_checked(frame.payload()).ok().and_then(|p| ArpRepr::parse(&p).ok());
        frame.ethertype() == EthernetProtocol::Arp
            && matches!(arp, Some(ArpRepr::EthernetIpv4 { operation: ArpOperation::Request, target_protocol_addr, .. })
                if target_protocol_addr == super::queue::GATEWAY)
    })
}

/// A stack with a connection open, restored with `seed` (None: not told):
/// whether the connection was aborted, the ports announced, whether the
/// next client's SYN made it ask for the gateway again, and the initial
/// sequence number it then answers with.
fn restore(seed: Option<u64>) -> (bool, Vec<u16>, bool, u32) {
    let mut rig = Rig::new(limits());
    let id = rig.stack.listen(PORT, 2).unwrap();
    assert!(rig.connect(client(1)));
    let (conn, _) = rig.accept(id).expect("accepted");
    if let Some(seed) = seed {
        rig.stack.restored(seed, &mut rig.device, rig.now);
    }
    let aborted = rig.stack.sockets.get::<tcp::Socket>(conn).state() == tcp::State::Closed;
    let announced = rig.stack.announcements().into_iter().map(|(_, port)| port).collect();
    assert!(rig.stack.announcements().is_empty(), "announced once");
    rig.device.tx.clear();
    rig.send(client(2), TcpControl::Syn, 1000, None);
    rig.poll();
    let asked = asks_for_gateway(&rig.device.tx);
    rig.device.rx.push_back(super::queue::arp_request(super::queue::GATEWAY, GUEST));
    rig.poll();
    let syn_ack = rig.replies(client(2)).into_iter().find(|s| s.control == TcpControl::Syn).expect("a SYN-ACK");
    (aborted, announced, asked, syn_ack.seq)
}

#[test]
fn a_restore_aborts_the_snapshots_connections_forgets_neighbours_and_reseeds() {
    let (aborted, announced, asked, isn) = restore(Some(1));
    assert!(aborted, "the snapshot's connection is aborted");
    assert_eq!(announced, [PORT], "the listener stays and is announced again");
    assert!(asked, "the gateway's MAC is asked for again");
    assert_ne!(restore(Some(2)).3, isn, "each restore's sequence numbers are its own");
    // What a restore would repeat without being told.
    let (aborted, announced, asked, isn) = restore(None);
    assert!(!aborted && announced.is_empty() && !asked);
    assert_eq!(restore(None).3, isn, "untold, every restore picks the same sequence numbers");
}
