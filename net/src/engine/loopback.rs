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
//! device's buffer cannot be taken back once filled, so every frame is
//! built in a buffer of the stack's first and copied to the device's (as
//! every received frame is copied out of it).

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use smoltcp::phy::{self, Device, DeviceCapabilities};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, EthernetFrame, EthernetProtocol};

/// `inner`, with the frames the stack sends itself kept off the wire.
pub struct Loopback<'a, D: Device + ?Sized> {
    pub inner: &'a mut D,
    pub mac: EthernetAddress,
    /// Sent to itself, for the stack to receive next.
    pub queue: &'a mut VecDeque<Vec<u8>>,
    /// Where a frame is built before it is known whose it is.
    pub scratch: &'a mut Vec<u8>,
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
        Some((rx, Tx { inner: Some(tx), mac: self.mac, queue: self.queue, scratch: self.scratch }))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        let inner = self.inner.transmit(now);
        Some(Tx { inner, mac: self.mac, queue: self.queue, scratch: self.scratch })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

impl<T: phy::TxToken> phy::TxToken for Tx<'_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        if self.scratch.len() < len {
            self.scratch.resize(len, 0);
        }
        let frame = &mut self.scratch[..len];
        let result = f(frame);
        let (to_self, to_wire) = destinations(self.mac, frame);
        if to_self {
            self.queue.push_back(frame.to_vec());
        }
        if to_wire && let Some(token) = self.inner {
            token.consume(len, |buffer| buffer.copy_from_slice(frame));
        }
        result
    }
}
