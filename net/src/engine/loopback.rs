//! Frames the stack sends to itself: smoltcp has no loopback route, so a
//! connection to the interface's own address would ARP for it forever.
//! [`Loopback`] wraps the device and keeps such frames for the stack to
//! receive on its next poll, as a host's kernel does for its own
//! addresses; so an image can be its own peer (and the shared tests run
//! over loopback on both targets).
//!
//! A frame is the stack's own when it is addressed to the interface's MAC;
//! a broadcast ARP frame goes both ways (its request for its own address:
//! smoltcp answers it, to its own MAC, and so learns where it is). Own
//! frames must not reach the wire: QEMU's user network, for one, ignores
//! MACs and would answer a SYN to the guest's own address with an RST. A
//! device's buffer cannot be taken back once filled, so once the stack
//! talks to itself every frame is built in a buffer of the stack's first
//! and copied to the device's. Until then frames go straight into the
//! device's buffer: a frame to the stack's own MAC needs the stack to have
//! asked for its own address (an ARP request whose sender and target
//! addresses are the same), which is what switches the copy on, for good.
//! A server that never talks to itself saves a copy of every frame.

use crate::metrics;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use smoltcp::phy::{self, Device, DeviceCapabilities};
use smoltcp::time::Instant;
use smoltcp::wire::{ArpOperation, ArpPacket, EthernetAddress, EthernetFrame, EthernetProtocol};

/// `inner`, with the frames the stack sends itself kept off the wire.
pub struct Loopback<'a, D: Device + ?Sized> {
    pub inner: &'a mut D,
    pub mac: EthernetAddress,
    /// Sent to itself, for the stack to receive next.
    pub queue: &'a mut VecDeque<Vec<u8>>,
    /// Where a frame is built before it is known whose it is.
    pub scratch: &'a mut Vec<u8>,
    /// Whether the stack has asked for its own address: then every frame
    /// is built in `scratch`.
    pub talks_to_itself: &'a mut bool,
}

/// Whether `frame` is an ARP request for the sender's own address.
fn asks_for_itself(frame: &[u8]) -> bool {
    let Ok(frame) = EthernetFrame::new_checked(frame) else { return false };
    let arp = (frame.ethertype() == EthernetProtocol::Arp).then(|| ArpPacket::new_checked(frame.payload()).ok());
    arp.flatten().is_some_and(|arp| {
        arp.operation() == ArpOperation::Request && arp.source_protocol_addr() == arp.target_protocol_addr()
    })
}

/// Where a frame `mac` sent goes: (to the stack itself, to the wire).
fn destinations(mac: EthernetAddress, frame: &[u8]) -> (bool, bool) {
    let Ok(frame) = EthernetFrame::new_checked(frame) else { return (false, true) };
    if frame.dst_addr() == mac {
        (true, false)
    } else {
        (frame.dst_addr().is_broadcast() && frame.ethertype() == EthernetProtocol::Arp, true)
    }
}

/// The inner device's token, or none when its queue is full: a frame for
/// the stack itself still goes through, any other is dropped (TCP resends).
pub struct Tx<'q, T> {
    inner: Option<T>,
    mac: EthernetAddress,
    queue: &'q mut VecDeque<Vec<u8>>,
    scratch: &'q mut Vec<u8>,
    talks_to_itself: &'q mut bool,
}

impl<D: Device + ?Sized> Device for Loopback<'_, D> {
    type RxToken<'b>
        = D::RxToken<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = Tx<'b, D::TxToken<'b>>
    where
        Self: 'b;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.inner.receive(now)?;
        let (mac, talks_to_itself) = (self.mac, &mut *self.talks_to_itself);
        Some((rx, Tx { inner: Some(tx), mac, queue: self.queue, scratch: self.scratch, talks_to_itself }))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        let inner = self.inner.transmit(now);
        let (mac, talks_to_itself) = (self.mac, &mut *self.talks_to_itself);
        Some(Tx { inner, mac, queue: self.queue, scratch: self.scratch, talks_to_itself })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

impl<T: phy::TxToken> phy::TxToken for Tx<'_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        if !*self.talks_to_itself
            && let Some(token) = self.inner
        {
            // Straight into the device's buffer; a broadcast ARP frame is
            // the stack's too.
            let (mac, queue, talks_to_itself) = (self.mac, self.queue, self.talks_to_itself);
            sent(len);
            return token.consume(len, |buffer| {
                let result = f(buffer);
                if destinations(mac, buffer).0 {
                    *talks_to_itself = asks_for_itself(buffer);
                    queue.push_back(buffer.to_vec());
                }
                result
            });
        }
        if self.scratch.len() < len {
            self.scratch.resize(len, 0);
        }
        let frame = &mut self.scratch[..len];
        let result = f(frame);
        let (to_self, to_wire) = destinations(self.mac, frame);
        if to_self {
            self.queue.push_back(frame.to_vec());
        }
        match self.inner {
            Some(token) if to_wire => {
                sent(len);
                token.consume(len, |buffer| buffer.copy_from_slice(frame));
            }
            None if to_wire => metrics::TX_DROPPED.inc(),
            _ => {}
        }
        result
    }
}

/// Counts a frame of `len` bytes handed to the device.
fn sent(len: usize) {
    metrics::TX_FRAMES.inc();
    metrics::TX_BYTES.add(len as u64);
}
