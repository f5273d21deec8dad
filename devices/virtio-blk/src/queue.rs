//! Requests in flight over virtio-drivers' non-blocking `VirtIOBlk` calls.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use core::task::{Poll, Waker};
use unikernel_core::Error;
use unikernel_virtio::{Hal, Transport};
use virtio_drivers::device::blk::{BlkReq, BlkResp, SECTOR_SIZE, VirtIOBlk};
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

/// One request: its buffers belong to the driver until the device is done.
struct InFlight {
    req: Box<BlkReq>,
    buf: Box<[u8]>,
    resp: Box<BlkResp>,
    write: bool,
    result: Option<Result<(), BlkError>>,
    waker: Option<Waker>,
    /// The future went away; drop the request when it completes.
    abandoned: bool,
}

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

    /// Queues a read of `len` bytes (whole sectors) from `sector`, or a
    /// write of `data`; `Pending` (after registering `waker`) while the
    /// queue is full.
    pub fn submit(
        &mut self,
        sector: u64,
        write: Option<&[u8]>,
        len: usize,
        waker: &Waker,
    ) -> Poll<Result<Ticket, BlkError>> {
        let mut req = Box::new(BlkReq::default());
        let mut resp = Box::new(BlkResp::default());
        let mut buf = match write {
            Some(data) => Box::<[u8]>::from(data),
            None => vec![0; len].into_boxed_slice(),
        };
        debug_assert!(buf.len() % SECTOR_SIZE == 0 && !buf.is_empty());
        // SAFETY: req, buf and resp are boxed and kept in `in_flight` until
        // the device returns the token; moving a Box does not move its contents.
        let submitted = unsafe {
            match write {
                Some(_) => self.raw.write_blocks_nb(sector as usize, &mut req, &buf, &mut resp),
                None => self.raw.read_blocks_nb(sector as usize, &mut req, &mut buf, &mut resp),
            }
        };
        match submitted {
            Ok(token) => {
                let entry =
                    InFlight { req, buf, resp, write: write.is_some(), result: None, waker: None, abandoned: false };
                let id = self.next_id;
                self.next_id += 1;
                self.in_flight.insert(id, entry);
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

    /// Whether `ticket` is done: its result and, for a read, its data.
    pub fn poll(&mut self, ticket: &Ticket, waker: &Waker) -> Poll<Result<Box<[u8]>, BlkError>> {
        self.complete();
        let entry = self.in_flight.get_mut(&ticket.0).expect("tickets are polled until done");
        match entry.result {
            None => {
                entry.waker = Some(waker.clone());
                Poll::Pending
            }
            Some(result) => {
                let entry = self.in_flight.remove(&ticket.0).expect("present");
                Poll::Ready(result.map(|()| entry.buf))
            }
        }
    }

    /// Gives up on `ticket`: its buffers are freed when the device is done.
    pub fn abandon(&mut self, ticket: Ticket) {
        if let Some(entry) = self.in_flight.get_mut(&ticket.0) {
            if entry.result.is_some() {
                self.in_flight.remove(&ticket.0);
            } else {
                entry.abandoned = true;
            }
        }
    }

    /// Takes finished requests off the used ring (in its order) and wakes
    /// their tasks; called on interrupts and polls.
    pub fn complete(&mut self) {
        self.raw.ack_interrupt();
        while let Some(token) = self.raw.peek_used() {
            let Some((id, entry)) = self.tokens.remove(&token).and_then(|id| Some((id, self.in_flight.get_mut(&id)?)))
            else {
                log::error!("virtio-blk: the device completed unknown token {token}");
                return;
            };
            // SAFETY: the same boxed buffers given to the *_nb call for this token.
            let status = unsafe {
                if entry.write {
                    self.raw.complete_write_blocks(token, &entry.req, &entry.buf, &mut entry.resp)
                } else {
                    self.raw.complete_read_blocks(token, &entry.req, &mut entry.buf, &mut entry.resp)
                }
            };
            let result = status.map_err(|e| match e {
                virtio_drivers::Error::IoError => BlkError::Io,
                virtio_drivers::Error::Unsupported => BlkError::Unsupported,
                _ => BlkError::Driver,
            });
            if entry.abandoned {
                self.in_flight.remove(&id);
            } else {
                entry.result = Some(result);
                if let Some(waker) = entry.waker.take() {
                    waker.wake();
                }
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
