//! A device with one virtqueue driven by polling, one request at a time,
//! each with a deadline: for small devices whose requests the host
//! completes at once (an entropy source, a console). virtio-drivers' own drivers for them
//! wait for the host without end (`add_notify_wait_pop`), so a host that
//! never answers would hang the guest. Here the device only ever touches
//! the queue's own buffer: past a deadline the queue is retired for good,
//! the buffer left to the device, and every later request fails at once.

use crate::{Hal, Transport};
use alloc::boxed::Box;
use alloc::format;
use core::time::Duration;
use unikernel_core::Error;
use unikernel_core::time::Instant;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::Transport as _;

/// Descriptors in the queue: one request is in flight at a time.
const SIZE: usize = 2;

bitflags::bitflags! {
    /// The features negotiated: only the ring's, which every device type has.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        const RING_INDIRECT_DESC = 1 << 28;
        const RING_EVENT_IDX = 1 << 29;
        const VERSION_1 = 1 << 32;
    }
}

/// A device, one of its virtqueues, and the buffer its requests use.
pub struct PolledDevice {
    transport: Transport,
    queue: VirtQueue<Hal, SIZE>,
    index: u16,
    /// Lent to the device during a request; never freed, so a request the
    /// device never completes cannot write into memory reused for another
    /// purpose.
    buffer: &'static mut [u8],
    deadline: Duration,
    /// Why the queue was retired, once it was.
    failed: Option<&'static str>,
}

/// Why a request failed; the queue is retired after each of these.
pub type Stuck = &'static str;

impl PolledDevice {
    /// Initialises the device with its virtqueue `index` only (no
    /// device-specific feature), a buffer of `len` bytes and a `deadline`
    /// per request.
    pub fn new(mut transport: Transport, index: u16, len: usize, deadline: Duration) -> Result<Self, Error> {
        let features = transport.begin_init(Features::all());
        let indirect = features.contains(Features::RING_INDIRECT_DESC);
        let event_idx = features.contains(Features::RING_EVENT_IDX);
        let mut queue = VirtQueue::new(&mut transport, index, indirect, event_idx)
            .map_err(|e| Error::msg(format!("queue {index}: {e}")))?;
        transport.finish_init();
        // Polled: the device need not interrupt.
        queue.set_dev_notify(false);
        let buffer = Box::leak(alloc::vec![0; len].into_boxed_slice());
        Ok(Self { transport, queue, index, buffer, deadline, failed: None })
    }

    /// The most one request carries.
    pub fn capacity(&self) -> usize {
        self.buffer.len()
    }

    /// A request the device writes into: the bytes it wrote.
    pub fn receive(&mut self) -> Result<&[u8], Stuck> {
        self.check()?;
        let written = self.request(self.buffer.len(), false)?;
        Ok(&self.buffer[..written])
    }

    /// A request the device reads: the first [`capacity`](Self::capacity)
    /// bytes of `data`; returns how many.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, Stuck> {
        self.check()?;
        let len = data.len().min(self.buffer.len());
        self.buffer[..len].copy_from_slice(&data[..len]);
        self.request(len, true)?;
        Ok(len)
    }

    fn check(&self) -> Result<(), Stuck> {
        self.failed.map_or(Ok(()), Err)
    }

    /// Lends the first `len` bytes of the buffer, to be read by the device
    /// (`readable`) or written by it, and waits for them back; returns how
    /// many the device says it wrote.
    fn request(&mut self, len: usize, readable: bool) -> Result<usize, Stuck> {
        let Self { queue, buffer, .. } = self;
        // SAFETY: the buffer is leaked, so it stays valid as long as the
        // device may use it, and the driver touches it again only after
        // `pop_used` below gave it back; a request past its deadline retires
        // the queue, so the buffer is never touched again.
        let added = lend(&mut buffer[..len], readable, |inputs, outputs| unsafe { queue.add(inputs, outputs) });
        let token = added.map_err(|_| self.fail("the queue refused a request"))?;
        if self.queue.should_notify() {
            self.transport.notify(self.index);
        }
        let asked = Instant::now();
        while !self.queue.can_pop() {
            if asked.elapsed() > self.deadline {
                return Err(self.fail("the device did not answer within its deadline"));
            }
            core::hint::spin_loop();
        }
        let Self { queue, buffer, .. } = self;
        // SAFETY: the same buffers as added with this token, which the
        // device gave back (`can_pop`).
        let popped =
            lend(&mut buffer[..len], readable, |inputs, outputs| unsafe { queue.pop_used(token, inputs, outputs) });
        let written = popped.map_err(|_| self.fail("the device gave back another request than the one in flight"))?;
        let written = usize::try_from(written).unwrap_or(usize::MAX);
        if !readable && written > len {
            return Err(self.fail("the device claims to have written past the buffer"));
        }
        Ok(written)
    }

    fn fail(&mut self, why: Stuck) -> Stuck {
        log::error!("virtio: queue {}: {why}; the device is no longer used", self.index);
        self.failed.get_or_insert(why)
    }
}

/// Calls `f` with `part` as the one buffer the device reads (`readable`)
/// or writes, in the shape `VirtQueue::add` and `pop_used` take.
fn lend<R>(part: &mut [u8], readable: bool, f: impl for<'a> FnOnce(&'a [&'a [u8]], &'a mut [&'a mut [u8]]) -> R) -> R {
    if readable { f(&[&*part], &mut []) } else { f(&[], &mut [&mut *part]) }
}
