//! A virtqueue driven by polling, one request at a time, each with a
//! deadline: for small devices whose requests the host completes at once
//! (an entropy source, a console). virtio-drivers' own drivers for them
//! wait for the host without end (`add_notify_wait_pop`), so a host that
//! never answers would hang the guest. Here the device only ever touches
//! the queue's own buffer: past a deadline the queue is retired for good,
//! the buffer left to the device, and every later request fails at once.

use crate::{Hal, Transport};
use alloc::boxed::Box;
use core::time::Duration;
use unikernel_core::time::Instant;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::Transport as _;

/// Descriptors in the queue: one request is in flight at a time.
const SIZE: usize = 2;

/// One virtqueue of a device and the buffer its requests use.
pub struct PolledQueue {
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

impl PolledQueue {
    /// Sets up queue `index` of a device between `begin_init` and
    /// `finish_init`, with a buffer of `len` bytes and a `deadline` per
    /// request.
    pub fn new(
        transport: &mut Transport,
        index: u16,
        features: (bool, bool),
        len: usize,
        deadline: Duration,
    ) -> Result<Self, virtio_drivers::Error> {
        let (indirect, event_idx) = features;
        let mut queue = VirtQueue::new(transport, index, indirect, event_idx)?;
        // Polled: the device need not interrupt.
        queue.set_dev_notify(false);
        let buffer = Box::leak(alloc::vec![0; len].into_boxed_slice());
        Ok(Self { queue, index, buffer, deadline, failed: None })
    }

    /// The most one request carries.
    pub fn capacity(&self) -> usize {
        self.buffer.len()
    }

    /// A request the device writes into: the bytes it wrote.
    pub fn receive(&mut self, transport: &mut Transport) -> Result<&[u8], Stuck> {
        let written = self.request(transport, false)?;
        Ok(&self.buffer[..written])
    }

    /// A request the device reads: the first [`capacity`](Self::capacity)
    /// bytes of `data`; returns how many.
    pub fn send(&mut self, transport: &mut Transport, data: &[u8]) -> Result<usize, Stuck> {
        let len = data.len().min(self.buffer.len());
        self.check()?;
        self.buffer[..len].copy_from_slice(&data[..len]);
        self.request_of(transport, len, true)?;
        Ok(len)
    }

    fn check(&self) -> Result<(), Stuck> {
        self.failed.map_or(Ok(()), Err)
    }

    fn request(&mut self, transport: &mut Transport, readable: bool) -> Result<usize, Stuck> {
        self.check()?;
        self.request_of(transport, self.buffer.len(), readable)
    }

    /// Lends the first `len` bytes of the buffer, to be read by the device
    /// (`readable`) or written by it, and waits for them back; returns how
    /// many the device says it wrote.
    fn request_of(&mut self, transport: &mut Transport, len: usize, readable: bool) -> Result<usize, Stuck> {
        let Self { queue, buffer, .. } = self;
        // SAFETY: the buffer is leaked, so it stays valid as long as the
        // device may use it, and the driver touches it again only after
        // `pop_used` below gave it back; a request past its deadline retires
        // the queue, so the buffer is never touched again.
        let added = lend(&mut buffer[..len], readable, |inputs, outputs| unsafe { queue.add(inputs, outputs) });
        let token = added.map_err(|_| self.fail("the queue refused a request"))?;
        if self.queue.should_notify() {
            transport.notify(self.index);
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
