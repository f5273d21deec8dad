//! smoltcp's view of a NIC: any [`Driver`] (embassy-net's NIC trait,
//! which virtio-net implements), with the `Context` of the task that polls
//! the stack, so the driver wakes that task when it has a frame or room
//! again. The same adapter as embassy-net's own.

use core::task::Context;
use embassy_net_driver::{Checksum, Driver};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// `driver` for one `Stack::poll` by the task of `cx`.
pub struct Phy<'d, 'c, 'w, D: Driver + ?Sized> {
    pub driver: &'d mut D,
    pub cx: &'c mut Context<'w>,
}

pub struct Rx<T>(T);

pub struct Tx<T>(T);

impl<D: Driver + ?Sized> phy::Device for Phy<'_, '_, '_, D> {
    type RxToken<'b>
        = Rx<D::RxToken<'b>>
    where
        Self: 'b;
    type TxToken<'b>
        = Tx<D::TxToken<'b>>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.driver.receive(self.cx)?;
        Some((Rx(rx), Tx(tx)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        self.driver.transmit(self.cx).map(Tx)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let theirs = self.driver.capabilities();
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = theirs.max_transmission_unit;
        caps.max_burst_size = theirs.max_burst_size;
        let mut checksum = ChecksumCapabilities::default();
        checksum.ipv4 = convert(theirs.checksum.ipv4);
        checksum.udp = convert(theirs.checksum.udp);
        checksum.tcp = convert(theirs.checksum.tcp);
        checksum.icmpv4 = convert(theirs.checksum.icmpv4);
        caps.checksum = checksum;
        caps
    }
}

fn convert(checksum: Checksum) -> phy::Checksum {
    match checksum {
        Checksum::Both => phy::Checksum::Both,
        Checksum::Tx => phy::Checksum::Tx,
        Checksum::Rx => phy::Checksum::Rx,
        Checksum::None => phy::Checksum::None,
    }
}

impl<T: embassy_net_driver::RxToken> phy::RxToken for Rx<T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        self.0.consume(|frame| {
            crate::capture::tap(frame);
            f(frame)
        })
    }
}

impl<T: embassy_net_driver::TxToken> phy::TxToken for Tx<T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        self.0.consume(len, |frame| {
            let sent = f(frame);
            crate::capture::tap(frame);
            sent
        })
    }
}

#[cfg(test)]
mod tests {
    //! A middleware NIC (counting frames, as a tracer or pcap writer would
    //! record them) around a queue NIC, driven by the stack through [`Phy`].

    use super::Phy;
    use crate::config::{Config, Static};
    use crate::engine::queue::{GATEWAY, GUEST, GUEST_MAC, arp_request};
    use crate::engine::{Limits, Stack};
    use alloc::collections::VecDeque;
    use alloc::sync::Arc;
    use alloc::task::Wake;
    use alloc::vec::Vec;
    use core::cell::Cell;
    use core::task::{Context, Waker};
    use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState, RxToken, TxToken};
    use smoltcp::time::Instant;

    /// Frames to receive, frames sent, and the waker of whoever found none.
    #[derive(Default)]
    struct Frames {
        rx: VecDeque<Vec<u8>>,
        tx: Vec<Vec<u8>>,
        waker: Option<Waker>,
    }

    struct QueueRx(Vec<u8>);
    struct QueueTx<'a>(&'a mut Vec<Vec<u8>>);

    impl Driver for Frames {
        type RxToken<'a> = QueueRx;
        type TxToken<'a> = QueueTx<'a>;

        fn receive(&mut self, cx: &mut Context) -> Option<(QueueRx, QueueTx<'_>)> {
            let Some(frame) = self.rx.pop_front() else {
                self.waker = Some(cx.waker().clone());
                return None;
            };
            Some((QueueRx(frame), QueueTx(&mut self.tx)))
        }

        fn transmit(&mut self, _cx: &mut Context) -> Option<QueueTx<'_>> {
            Some(QueueTx(&mut self.tx))
        }

        fn link_state(&mut self, _cx: &mut Context) -> LinkState {
            LinkState::Up
        }

        fn capabilities(&self) -> Capabilities {
            let mut caps = Capabilities::default();
            caps.max_transmission_unit = 1514;
            caps
        }

        fn hardware_address(&self) -> HardwareAddress {
            HardwareAddress::Ethernet(GUEST_MAC.0)
        }
    }

    impl RxToken for QueueRx {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, f: F) -> R {
            f(&mut self.0)
        }
    }

    impl TxToken for QueueTx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut frame = alloc::vec![0; len];
            let result = f(&mut frame);
            self.0.push(frame);
            result
        }
    }

    /// Middleware: the same trait around another NIC, seeing every frame.
    struct Counting<D> {
        inner: D,
        received: Cell<usize>,
        sent: Cell<usize>,
    }

    struct Counted<'a, T>(T, &'a Cell<usize>);

    impl<D: Driver> Driver for Counting<D> {
        type RxToken<'a>
            = Counted<'a, D::RxToken<'a>>
        where
            Self: 'a;
        type TxToken<'a>
            = Counted<'a, D::TxToken<'a>>
        where
            Self: 'a;

        fn receive(&mut self, cx: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
            let (rx, tx) = self.inner.receive(cx)?;
            Some((Counted(rx, &self.received), Counted(tx, &self.sent)))
        }

        fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
            Some(Counted(self.inner.transmit(cx)?, &self.sent))
        }

        fn link_state(&mut self, cx: &mut Context) -> LinkState {
            self.inner.link_state(cx)
        }

        fn capabilities(&self) -> Capabilities {
            self.inner.capabilities()
        }

        fn hardware_address(&self) -> HardwareAddress {
            self.inner.hardware_address()
        }
    }

    impl<T: RxToken> RxToken for Counted<'_, T> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
            self.1.set(self.1.get() + 1);
            self.0.consume(f)
        }
    }

    impl<T: TxToken> TxToken for Counted<'_, T> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            self.1.set(self.1.get() + 1);
            self.0.consume(len, f)
        }
    }

    struct Task;

    impl Wake for Task {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn a_middleware_nic_sees_every_frame_and_the_pollers_waker_reaches_the_nic() {
        let mut nic = Counting { inner: Frames::default(), received: Cell::new(0), sent: Cell::new(0) };
        let waker = Waker::from(Arc::new(Task));
        let cx = &mut Context::from_waker(&waker);
        let config = Config::Static(Static { address: GUEST, prefix_len: 24, gateway: Some(GATEWAY), dns: None });
        let (now, limits) = (Instant::from_secs(1), Limits::for_heap(64 << 20));
        let mut stack = Stack::new(config, GUEST_MAC.0, 7, limits, &mut Phy { driver: &mut nic, cx }, now);
        nic.inner.rx.push_back(arp_request(GATEWAY, GUEST));
        stack.poll(now, &mut Phy { driver: &mut nic, cx });
        assert_eq!((nic.received.get(), nic.sent.get()), (1, 1), "the ARP request in, its reply out");
        assert_eq!(nic.inner.tx.len(), 1);
        assert!(nic.inner.waker.is_some_and(|w| w.will_wake(&waker)), "the NIC wakes the task that polled");
    }
}
