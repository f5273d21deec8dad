//! Requests in flight over virtio-drivers' non-blocking `VirtIOBlk` calls.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use core::ptr::NonNull;
use core::task::{Poll, Waker};
use unikernel_core::Error;
use unikernel_virtio::{Hal, Transport};
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use virtio_drivers::transport::Transport as _;

/// `VIRTIO_BLK_F_FLUSH`: the device honours flush requests.
const FEATURE_FLUSH: u64 = 1 << 9;

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// The device reported an I/O error.
    Io,
    /// The device refused the request (read-only, unsupported).
    Unsupported,
    /// The queue or the driver failed.
    Driver,
}

/// One request. The device reads or writes the caller's buffer directly;
/// the caller keeps it alive until the request is done ([`VirtioBlk::submit`]).
struct InFlight {
    req: Box<BlkReq>,
    buf: NonNull<[u8]>,
    resp: Box<BlkResp>,
    write: bool,
    result: Option<Result<(), BlkError>>,
    waker: Option<Waker>,
}

// SAFETY: the buffer pointer is only dereferenced by the driver, under the
// device's lock, while submit's contract keeps the buffer alive; the
// machine has one CPU, so nothing runs concurrently with its owner.
unsafe impl Send for InFlight {}

/// A virtio block device and its requests, by request number. A finished
/// request stays until its task takes the result, while the device may
/// already reuse its descriptor token for another.
pub struct VirtioBlk {
    raw: VirtIOBlk<Hal, Transport>,
    can_flush: bool,
    in_flight: BTreeMap<u64, InFlight>,
    /// Request numbers of the tokens the device holds.
    tokens: BTreeMap<u16, u64>,
    next_id: u64,
    /// Tasks waiting for a free descriptor.
    waiting_for_room: alloc::vec::Vec<Waker>,
}

/// A submitted request, to poll with [`VirtioBlk::poll`].
#[derive(Debug)]
pub struct Ticket(u64);

impl VirtioBlk {
    pub(crate) fn new(mut transport: Transport) -> Result<Self, Error> {
        let can_flush = transport.read_device_features() & FEATURE_FLUSH != 0;
        let mut raw = VirtIOBlk::new(transport).map_err(|e| Error::msg(alloc::format!("cannot initialise: {e}")))?;
        raw.enable_interrupts();
        let (in_flight, tokens, waiting_for_room) = (BTreeMap::new(), BTreeMap::new(), alloc::vec::Vec::new());
        Ok(Self { raw, can_flush, in_flight, tokens, next_id: 0, waiting_for_room })
    }

    /// Capacity in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.raw.capacity()
    }

    /// Whether the device honours flush (`VIRTIO_BLK_F_FLUSH`).
    pub fn can_flush(&self) -> bool {
        self.can_flush
    }

    /// Queues a read into `buf` (whole sectors) from `sector`, or a write
    /// of it; `Pending` (after registering `waker`) while the queue is full.
    ///
    /// # Safety
    /// `buf` must stay valid, and untouched by the caller, until the ticket
    /// is done: [`VirtioBlk::poll`] returned `Ready`, or [`VirtioBlk::wait`]
    /// returned.
    pub unsafe fn submit(
        &mut self,
        sector: u64,
        buf: NonNull<[u8]>,
        write: bool,
        waker: &Waker,
    ) -> Poll<Result<Ticket, BlkError>> {
        let mut req = Box::new(BlkReq::default());
        let mut resp = Box::new(BlkResp::default());
        // SAFETY: the caller keeps `buf` valid and unaliased until done;
        // req and resp are boxed and kept in `in_flight` until then, and
        // moving a Box does not move its contents.
        let submitted = unsafe {
            if write {
                self.raw.write_blocks_nb(sector as usize, &mut req, buf.as_ref(), &mut resp)
            } else {
                self.raw.read_blocks_nb(sector as usize, &mut req, &mut *buf.as_ptr(), &mut resp)
            }
        };
        match submitted {
            Ok(token) => {
                let id = self.next_id;
                self.next_id += 1;
                self.in_flight.insert(id, InFlight { req, buf, resp, write, result: None, waker: None });
                self.tokens.insert(token, id);
                Poll::Ready(Ok(Ticket(id)))
            }
            Err(virtio_drivers::Error::QueueFull) => {
                self.waiting_for_room.push(waker.clone());
                Poll::Pending
            }
            Err(e) => {
                log::warn!("virtio-blk: submit: {e}");
                Poll::Ready(Err(BlkError::Driver))
            }
        }
    }

    /// The result of `ticket`, once the device is done with it.
    pub fn poll(&mut self, ticket: &Ticket, waker: &Waker) -> Poll<Result<(), BlkError>> {
        self.complete();
        let entry = self.in_flight.get_mut(&ticket.0).expect("tickets are polled until done");
        match entry.result {
            None => {
                entry.waker = Some(waker.clone());
                Poll::Pending
            }
            Some(result) => {
                self.in_flight.remove(&ticket.0);
                Poll::Ready(result)
            }
        }
    }

    /// Waits, spinning, until the device is done with `ticket`: for a
    /// request whose future is dropped while the device may still use its
    /// buffer. Completions need no interrupt, only the used ring.
    pub fn wait(&mut self, ticket: Ticket) {
        while self.in_flight.get(&ticket.0).is_some_and(|e| e.result.is_none()) {
            self.complete();
            core::hint::spin_loop();
        }
        self.in_flight.remove(&ticket.0);
    }

    /// Acknowledges the device's interrupt (only the handler needs to: the
    /// status read is a VM exit) and takes finished requests off the ring.
    pub fn on_interrupt(&mut self) {
        self.raw.ack_interrupt();
        self.complete();
    }

    /// Takes finished requests off the used ring (in its order) and wakes
    /// their tasks; called on interrupts and polls.
    pub fn complete(&mut self) {
        while let Some(token) = self.raw.peek_used() {
            let Some(entry) = self.tokens.remove(&token).and_then(|id| self.in_flight.get_mut(&id)) else {
                log::error!("virtio-blk: the device completed unknown token {token}");
                return;
            };
            // SAFETY: the same buffers given to the *_nb call for this token,
            // still valid (submit's contract).
            let status = unsafe {
                if entry.write {
                    self.raw.complete_write_blocks(token, &entry.req, entry.buf.as_ref(), &mut entry.resp)
                } else {
                    self.raw.complete_read_blocks(token, &entry.req, &mut *entry.buf.as_ptr(), &mut entry.resp)
                }
            };
            let result = status.map_err(|e| match e {
                virtio_drivers::Error::IoError => BlkError::Io,
                virtio_drivers::Error::Unsupported => BlkError::Unsupported,
                _ => BlkError::Driver,
            });
            entry.result = Some(result);
            if let Some(waker) = entry.waker.take() {
                waker.wake();
            }
            for waker in self.waiting_for_room.drain(..) {
                waker.wake();
            }
        }
    }

    /// Makes everything written so far durable: once no request is in
    /// flight (virtio-drivers' blocking flush expects the ring to itself),
    /// asks the device to flush and waits for it.
    pub fn poll_flush(&mut self, waker: &Waker) -> Poll<Result<(), BlkError>> {
        if !self.can_flush {
            return Poll::Ready(Err(BlkError::Unsupported));
        }
        self.complete();
        if self.in_flight.values().any(|e| e.result.is_none()) {
            self.waiting_for_room.push(waker.clone());
            return Poll::Pending;
        }
        Poll::Ready(self.raw.flush().map_err(|_| BlkError::Io))
    }
}
