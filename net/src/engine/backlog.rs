//! A listening port: a backlog of sockets, each taking one incoming
//! connection, kept usable against clients that never finish a handshake.

use crate::waiters::Waiters;
use alloc::vec::Vec;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};

pub struct Backlog {
    pub port: u16,
    /// One per backlog place; `None` while the connection budget leaves no
    /// room for a listening socket there.
    pub slots: Vec<Slot>,
    /// Connections of this port at once, the backlog included.
    pub max_connections: usize,
    /// Tasks waiting in `accept`.
    pub accepters: Waiters,
}

#[derive(Clone, Copy, Default)]
pub struct Slot {
    pub handle: Option<SocketHandle>,
    /// When the socket was first seen half-open (SYN received).
    half_open_since: Option<Instant>,
}

impl Slot {
    pub fn new(handle: Option<SocketHandle>) -> Self {
        Self { handle, half_open_since: None }
    }
}

fn relisten(socket: &mut tcp::Socket, port: u16) {
    // Silently: the peer of a half-open connection is likely spoofed, and
    // an RST to it would be backscatter. `listen` cannot fail on a closed
    // socket with a non-zero port.
    socket.abort();
    let _ = socket.listen(port);
}

impl Backlog {
    /// Keeps the slots usable: re-listens sockets that closed or stayed
    /// half-open past `half_open`. Returns whether a connection waits to be
    /// accepted.
    pub fn tend(&mut self, sockets: &mut SocketSet, now: Instant, half_open: Duration) -> bool {
        let mut ready = false;
        for slot in &mut self.slots {
            let Some(handle) = slot.handle else { continue };
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            match socket.state() {
                State::SynReceived => {
                    let since = *slot.half_open_since.get_or_insert(now);
                    if now >= since + half_open {
                        relisten(socket, self.port);
                        slot.half_open_since = None;
                    }
                }
                State::Listen => slot.half_open_since = None,
                State::Closed => {
                    relisten(socket, self.port);
                    slot.half_open_since = None;
                }
                _ => {
                    slot.half_open_since = None;
                    ready = true;
                }
            }
        }
        ready
    }

    /// Called before a SYN is processed: when no socket listens, re-listens
    /// a closed one or else recycles the oldest half-open one, so that a
    /// SYN flood cannot lock out clients that finish their handshake.
    pub fn make_room(&mut self, sockets: &mut SocketSet, now: Instant) {
        let mut victim: Option<(Instant, usize)> = None;
        for (i, slot) in self.slots.iter().enumerate() {
            let Some(handle) = slot.handle else { continue };
            let since = match sockets.get::<tcp::Socket>(handle).state() {
                State::Listen => return,
                State::Closed => Instant::ZERO,
                // Seen half-open since this poll began: the newest.
                State::SynReceived => slot.half_open_since.unwrap_or(now),
                _ => continue,
            };
            if victim.is_none_or(|(at, _)| since < at) {
                victim = Some((since, i));
            }
        }
        if let Some((_, i)) = victim {
            crate::metrics::TCP_RECYCLED.inc();
            let slot = &mut self.slots[i];
            relisten(sockets.get_mut::<tcp::Socket>(slot.handle.expect("chosen")), self.port);
            slot.half_open_since = None;
        }
    }

    /// Takes a connection that finished its handshake (it may have closed
    /// since: the application still reads what was sent), leaving its slot
    /// empty. Returns the slot and the socket.
    pub fn take_ready(&mut self, sockets: &mut SocketSet) -> Option<(usize, SocketHandle)> {
        self.slots.iter_mut().enumerate().find_map(|(i, slot)| {
            let handle = slot.handle?;
            let state = sockets.get::<tcp::Socket>(handle).state();
            if matches!(state, State::Listen | State::SynReceived | State::Closed) {
                return None;
            }
            slot.handle = None;
            slot.half_open_since = None;
            Some((i, handle))
        })
    }

    /// When the oldest half-open connection expires.
    pub fn next_deadline(&self, half_open: Duration) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.half_open_since).min().map(|since| since + half_open)
    }
}
