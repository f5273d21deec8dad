//! smoltcp's view of the virtio-net device.

use alloc::vec::Vec;
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use unikernel_virtio_net::{RxFrame, VirtioNet};

/// The Ethernet MTU smoltcp sees (frame without FCS).
const MTU: usize = 1514;

/// The device for one `Interface::poll`: frames smoltcp has read are
/// collected in `done` and reposted to the device on the next receive.
pub struct Phy<'a> {
    pub nic: &'a mut VirtioNet,
    done: Vec<RxFrame>,
}

impl<'a> Phy<'a> {
    pub fn new(nic: &'a mut VirtioNet) -> Self {
        Self { nic, done: Vec::new() }
    }
}

impl Drop for Phy<'_> {
    fn drop(&mut self) {
        for frame in self.done.drain(..) {
            self.nic.recycle(frame);
        }
    }
}

pub struct Rx<'a> {
    frame: RxFrame,
    done: &'a mut Vec<RxFrame>,
}

pub struct Tx<'a> {
    nic: &'a mut VirtioNet,
}

impl phy::Device for Phy<'_> {
    type RxToken<'b>
        = Rx<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = Tx<'b>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        for frame in self.done.drain(..) {
            self.nic.recycle(frame);
        }
        let frame = self.nic.receive()?;
        Some((Rx { frame, done: &mut self.done }, Tx { nic: self.nic }))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        self.nic.can_transmit().then_some(Tx { nic: self.nic })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps
    }
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let result = f(self.frame.bytes());
        self.done.push(self.frame);
        result
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut result = None;
        let mut f = Some(f);
        // A reply token from `receive` may find the send queue full: the
        // frame is then built and dropped, as a full NIC would; TCP resends.
        if self.nic.can_transmit() {
            match self.nic.transmit(len, |buf| result = Some((f.take().expect("called once"))(buf))) {
                Ok(()) => {}
                Err(e) => log::debug!("net: frame dropped: {e}"),
            }
        }
        result.unwrap_or_else(|| (f.take().expect("not called yet"))(&mut alloc::vec![0; len]))
    }
}
