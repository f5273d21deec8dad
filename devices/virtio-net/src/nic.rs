//! The driver behind the NIC trait network stacks take:
//! [`embassy_net_driver::Driver`], frames in and out through tokens, the
//! caller's waker registered through the `Context` it polls with. Any
//! stack or middleware written against that trait drives this device.

use crate::driver::{RxFrame, VirtioNet};
use alloc::vec::Vec;
use core::task::Context;
use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState};
use futures_util::task::AtomicWaker;
use virtio_drivers::Hal;
use virtio_drivers::transport::Transport;

/// The Ethernet MTU a stack sees (a frame without its FCS).
pub const MTU: usize = 1514;

/// The device for one round of a stack's polling. Frames the stack has
/// read are collected in `done` and reposted on the next receive (or
/// when the round ends), so a receive token need not borrow the device.
pub struct Nic<'a, H: Hal, T: Transport> {
    nic: &'a mut VirtioNet<H, T>,
    /// Woken by the device's interrupt: a frame arrived or a send completed.
    waker: &'a AtomicWaker,
    done: Vec<RxFrame>,
}

impl<'a, H: Hal, T: Transport> Nic<'a, H, T> {
    /// `nic`, whose interrupt handler wakes `waker`.
    pub fn new(nic: &'a mut VirtioNet<H, T>, waker: &'a AtomicWaker) -> Self {
        Self { nic, waker, done: Vec::new() }
    }

    fn recycle(&mut self) {
        for frame in self.done.drain(..) {
            self.nic.recycle(frame);
        }
    }
}

impl<H: Hal, T: Transport> Drop for Nic<'_, H, T> {
    fn drop(&mut self) {
        self.recycle();
    }
}

/// A received frame; its buffer goes back to the device after the round.
pub struct Rx<'a> {
    frame: RxFrame,
    done: &'a mut Vec<RxFrame>,
}

/// Room to send one frame.
pub struct Tx<'a, H: Hal, T: Transport> {
    nic: &'a mut VirtioNet<H, T>,
}

impl<H: Hal, T: Transport> Driver for Nic<'_, H, T> {
    type RxToken<'b>
        = Rx<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = Tx<'b, H, T>
    where
        Self: 'b;

    fn receive(&mut self, cx: &mut Context) -> Option<(Rx<'_>, Tx<'_, H, T>)> {
        self.recycle();
        let frame = self.nic.receive().or_else(|| {
            // Registered only when there is nothing (the hot path stays
            // free of it), then a second look: a frame that arrived just
            // before registering raised its interrupt too early to wake us.
            self.waker.register(cx.waker());
            self.nic.receive()
        })?;
        Some((Rx { frame, done: &mut self.done }, Tx { nic: self.nic }))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Tx<'_, H, T>> {
        // As `receive`: a completed send frees room.
        let room = self.nic.can_transmit() || {
            self.waker.register(cx.waker());
            self.nic.can_transmit()
        };
        room.then_some(Tx { nic: self.nic })
    }

    fn link_state(&mut self, _cx: &mut Context) -> LinkState {
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.nic.mac())
    }
}

impl embassy_net_driver::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, f: F) -> R {
        let result = f(self.frame.bytes_mut());
        self.done.push(self.frame);
        result
    }
}

impl<H: Hal, T: Transport> embassy_net_driver::TxToken for Tx<'_, H, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut f = Some(f);
        let mut result = None;
        // A reply token from `receive` may find the send queue full: the
        // frame is then built and dropped, as a full NIC would; TCP resends.
        if self.nic.can_transmit() {
            let sent = self.nic.transmit(len, |buf| result = Some((f.take().expect("called once"))(buf)));
            if let Err(e) = sent {
                log::debug!("virtio-net: frame dropped: {e}");
            }
        }
        result.unwrap_or_else(|| (f.take().expect("not called yet"))(&mut alloc::vec![0; len]))
    }
}
