//! Harnesses for virtio: the virtio-net and virtio-blk drivers, unchanged,
//! against a fake device ([`fake`]) that the fuzzer's bytes drive — honest
//! completions in any order, used entries naming any id with any length,
//! used-index jumps, a configuration that keeps changing —
//! interleaved with the driver's own calls.
//!
//! Properties: no panic and no out-of-bounds or freed-memory access (the
//! fake device writes into every buffer it holds when it completes it, so
//! AddressSanitizer sees a driver that freed one early); every loop ends;
//! and once the driver has read everything the device published, it has
//! stopped the device exactly when the device lied. A stopped virtio-net
//! device gives no frames and takes none; on a failed virtio-blk device
//! every request ends with an error and later ones fail at once; on a
//! healthy one every request ends and no buffer is left behind.

pub mod fake;

use crate::Target;
use fake::{Device, FEATURE_VERSION_1, Fake, HostHal};
use std::cell::RefCell;
use std::rc::Rc;
use std::task::{Poll, Waker};
use unikernel_virtio::Transport;
use unikernel_virtio_blk::queue::{BlkError, Request, Ticket, VirtioBlk};
use unikernel_virtio_net::driver::{BUFFER, VirtioNet};
use virtio_drivers::transport::DeviceType;

/// The fuzz targets of this module, by the names `fuzz/Cargo.toml` gives them.
pub const TARGETS: &[Target] = &[("virtio_net_rings", net_rings), ("virtio_blk_rings", blk_rings)];

type Nic = VirtioNet<HostHal, Transport<Fake>>;
type Disk = VirtioBlk<HostHal, Transport<Fake>>;

const RX: usize = 0;
const TX: usize = 1;
/// Used entries a ring can hold unread (its index is 16 bits).
const MAX_UNREAD: usize = 1 << 16;

/// The fuzzer's bytes read as numbers; zeros once they run out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }

    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A device of `device_type` with `queues` queues: offered features, a
    /// configuration space of up to 15 bytes, how often its configuration
    /// changes while read (255: forever), and its largest queue.
    fn device(&mut self, device_type: DeviceType, queues: usize) -> Rc<RefCell<Device>> {
        let features = self.u64();
        let config = self.take::<15>()[..usize::from(self.u8() % 16)].to_vec();
        let changes = match self.u8() {
            u8::MAX => u32::MAX,
            n => u32::from(n % 32),
        };
        let size = u32::from(self.u16());
        Rc::new(RefCell::new(Device::new(device_type, features, config, queues).unsettled(changes, size)))
    }
}

/// Whether a receive completion of `len` bytes fits its buffer, after a
/// virtio-net header of `header` bytes.
fn fits(len: u32, header: u32) -> bool {
    (header..=BUFFER as u32).contains(&len)
}

/// virtio-net: receive and send queues under hostile completions.
pub fn net_rings(data: &[u8]) {
    let mut input = Input(data);
    let device = input.device(DeviceType::Network, 2);
    let Ok(mut nic) = Nic::new(Transport::new(Fake(device.clone()))) else { return };
    let header = if device.borrow().negotiated() & FEATURE_VERSION_1 != 0 { 12 } else { 10 };
    let lie = |device: &Rc<RefCell<Device>>, lie: bool| device.borrow_mut().hostile |= lie;
    let mut frames = Vec::new();
    while !input.is_empty() {
        match input.u8() % 8 {
            0 => {
                // Writes what fits, and reports `len` bytes.
                let (nth, len) = (usize::from(input.u8()), u32::from(input.u16()));
                let done = device.borrow_mut().complete(RX, nth, len, None, Some(len));
                lie(&device, done.is_some() && !fits(len, header));
            }
            1 => {
                let (nth, len) = (usize::from(input.u8()), u32::from(input.u16()));
                device.borrow_mut().complete(TX, nth, len, None, None);
            }
            2 => {
                let (q, id, len) = (usize::from(input.u8() & 1), input.u32(), input.u32());
                let held = device.borrow_mut().inject(q, id, len);
                lie(&device, !held || (q == RX && !fits(len, header)));
            }
            3 => {
                let (q, delta) = (usize::from(input.u8() & 1), u16::from(input.u8()));
                let exposed = device.borrow_mut().jump(q, delta);
                let lied = exposed.iter().any(|&(_, len, held)| !held || (q == RX && !fits(len, header)));
                lie(&device, lied);
            }
            4 => {
                if let Some(frame) = nic.receive() {
                    assert!(frame.bytes().len() <= BUFFER - header as usize, "a frame beyond its buffer");
                    frames.push(frame);
                }
            }
            5 => {
                // Read what arrived before reposting: a used entry is judged
                // against the buffers lent when the device wrote it (one
                // naming a buffer before it is reposted cannot be told from
                // a completion of the reposted one).
                frames.extend((0..MAX_UNREAD).map_while(|_| nic.receive()));
                if !frames.is_empty() {
                    nic.recycle(frames.remove(0));
                }
            }
            6 => {
                let len = usize::from(input.u16()) % 1515;
                if nic.can_transmit() {
                    // A full queue refuses the frame; that is not a failure.
                    let _ = nic.transmit(len, |frame| frame.fill(0x5a));
                }
            }
            _ => nic.ack_interrupt(),
        }
    }
    // The driver reads all the device published: each receive takes one
    // used entry or finds the device stopped.
    frames.extend((0..MAX_UNREAD).map_while(|_| nic.receive()));
    frames.into_iter().for_each(|frame| nic.recycle(frame));
    let drained = (0..=MAX_UNREAD).any(|_| nic.receive().map(|frame| nic.recycle(frame)).is_none());
    assert!(drained, "receive never ran dry");
    let can_send = nic.can_transmit();
    let hostile = device.borrow().hostile;
    assert_eq!(nic.stopped().is_some(), hostile, "stopped: {:?}", nic.stopped());
    if hostile {
        assert!(!can_send && nic.receive().is_none() && nic.transmit(60, |_| ()).is_err());
    }
}

/// virtio-blk: reads, writes, flushes and abandoned requests under hostile
/// completions.
pub fn blk_rings(data: &[u8]) {
    let mut input = Input(data);
    let device = input.device(DeviceType::Block, 1);
    let Ok(mut disk) = Disk::new(Transport::new(Fake(device.clone()))) else { return };
    let waker = Waker::noop();
    let mut tickets: Vec<(Ticket, usize)> = Vec::new();
    while !input.is_empty() {
        match input.u8() % 9 {
            op @ 0..=2 => {
                let (len, sector) = (512 * (1 + usize::from(input.u8() % 8)), u64::from(input.u16()));
                let (buf, flush) = (vec![0; len], op == 2 && disk.can_flush());
                let mut request = Some(match op {
                    0 => Request::Read { sector, buf },
                    1 => Request::Write { sector, buf },
                    _ => Request::Flush,
                });
                match disk.submit(&mut request, waker) {
                    Poll::Ready(Ok(ticket)) => tickets.push((ticket, if flush { 0 } else { len })),
                    Poll::Ready(Err(BlkError::Unsupported)) => assert!(op == 2 && !flush),
                    Poll::Ready(Err(e)) => assert!(e == BlkError::Driver && disk.failed().is_some(), "{e:?}"),
                    Poll::Pending => assert!(request.is_some(), "a full queue keeps the request with its owner"),
                }
            }
            3 if !tickets.is_empty() => {
                let i = usize::from(input.u8()) % tickets.len();
                match disk.poll(&tickets[i].0, waker) {
                    Poll::Ready(result) => {
                        let (_, len) = tickets.swap_remove(i);
                        if let Ok(buf) = result {
                            assert_eq!(buf.len(), len);
                        }
                    }
                    Poll::Pending => {}
                }
            }
            4 if !tickets.is_empty() => {
                let i = usize::from(input.u8()) % tickets.len();
                disk.abandon(tickets.swap_remove(i).0);
            }
            5 => {
                // Statuses 0-2 are the protocol's; the rest are lies.
                let (nth, status) = (usize::from(input.u8()), input.u8() % 5);
                let done = device.borrow_mut().complete(0, nth, u32::MAX, Some(status), None);
                device.borrow_mut().hostile |= done.is_some() && status > 2;
            }
            6 => {
                // No status written: a lie whichever request it names.
                device.borrow_mut().inject(0, input.u32(), input.u32());
                device.borrow_mut().hostile = true;
            }
            7 => {
                let exposed = device.borrow_mut().jump(0, u16::from(input.u8()));
                device.borrow_mut().hostile |= !exposed.is_empty();
            }
            _ => disk.on_interrupt(),
        }
    }
    // A healthy device finishes what it holds; then every request has ended.
    if disk.failed().is_none() {
        while device.borrow_mut().complete(0, 0, u32::MAX, Some(0), None).is_some() {}
    }
    disk.complete();
    for (ticket, len) in tickets {
        match disk.poll(&ticket, waker) {
            Poll::Ready(Ok(buf)) => assert_eq!(buf.len(), len),
            Poll::Ready(Err(_)) => {}
            Poll::Pending => panic!("a request never ended"),
        }
    }
    let hostile = device.borrow().hostile;
    assert_eq!(disk.failed().is_some(), hostile, "failed: {:?}", disk.failed());
    if hostile {
        let refused = disk.submit(&mut Some(Request::Read { sector: 0, buf: vec![0; 512] }), waker);
        assert!(matches!(refused, Poll::Ready(Err(BlkError::Driver))), "a failed device took a request");
    } else {
        assert_eq!(disk.requests(), 0, "buffers left behind");
    }
}

/// LeakSanitizer's suppressions (it asks for them by this name): a failed
/// device's requests are never popped, so virtio-drivers never frees their
/// indirect descriptor lists — on purpose, since the device may still read
/// them. Nothing else may leak.
#[unsafe(no_mangle)]
pub extern "C" fn __lsan_default_suppressions() -> *const std::ffi::c_char {
    c"leak:add_indirect\n".as_ptr()
}

#[cfg(test)]
mod tests;
