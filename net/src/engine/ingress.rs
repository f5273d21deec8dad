//! Frames one at a time, looked at before smoltcp processes them: a SYN
//! to a listener with no listening socket left makes room first (see
//! [`Backlog::make_room`](super::backlog::Backlog::make_room)).

use alloc::vec::Vec;
use smoltcp::phy::{self, Device, DeviceCapabilities};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};

/// Copies the next frame of `device` into `frame`; false when none waits.
pub fn take<D: Device + ?Sized>(device: &mut D, now: Instant, frame: &mut Vec<u8>) -> bool {
    let Some((rx, _tx)) = device.receive(now) else { return false };
    phy::RxToken::consume(rx, |bytes| {
        frame.clear();
        frame.extend_from_slice(bytes);
    });
    crate::metrics::RX_FRAMES.inc();
    crate::metrics::RX_BYTES.add(frame.len() as u64);
    true
}

/// The destination port of a TCP SYN (a connection request) in `frame`.
pub fn syn_port(frame: &[u8]) -> Option<u16> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    (tcp.syn() && !tcp.ack()).then(|| tcp.dst_port())
}

/// `inner` with one frame to receive: the one [`take`] copied out.
pub struct OneFrame<'a, D: Device + ?Sized> {
    pub inner: &'a mut D,
    pub frame: Option<&'a [u8]>,
}

pub struct Rx<'a>(&'a [u8]);

/// The inner device's transmit token; when its queue is full, a reply is
/// built and dropped, as a full NIC would (TCP resends).
pub enum Tx<T> {
    Inner(T),
    Full,
}

impl<'a, D: Device + ?Sized> Device for OneFrame<'a, D> {
    type RxToken<'b>
        = Rx<'a>
    where
        Self: 'b;
    type TxToken<'b>
        = Tx<D::TxToken<'b>>
    where
        Self: 'b;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self.frame.take()?;
        Some((Rx(frame), self.inner.transmit(now).map_or(Tx::Full, Tx::Inner)))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(now).map(Tx::Inner)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl<T: phy::TxToken> phy::TxToken for Tx<T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        match self {
            Self::Inner(token) => token.consume(len, f),
            Self::Full => f(&mut alloc::vec![0; len]),
        }
    }
}
