//! Requests in flight on the device's virtqueue (virtio-drivers'
//! `VirtQueue`, driven directly: its `VirtIOBlk` has no non-blocking flush,
//! and its blocking one spins until the host's `fdatasync` returns — or
//! forever, if the device never answers).
//!
//! The driver owns each request's buffer until the device is done with it:
//! a request abandoned by its task leaves the buffer here, freed when the
//! device completes it. The device is not trusted: a completion must name
//! a request in flight and carry a valid status, or the device is failed —
//! every request in flight ends with [`BlkError::Driver`], later ones fail
//! at once, and the buffers it held stay lent forever, since it may still
//! write them.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::task::{Poll, Waker};
use unikernel_core::Error;
use virtio_drivers::Hal;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::Transport;

/// Bytes per sector of the virtio-blk protocol.
pub const SECTOR_SIZE: usize = 512;
/// Descriptors in the queue: with indirect descriptors, requests in flight.
const QUEUE_SIZE: usize = 16;
const QUEUE: u16 = 0;
/// Status bytes (virtio 1.2, 5.2.6), and one the device never writes.
const OK: u8 = 0;
const IO_ERROR: u8 = 1;
const UNSUPPORTED: u8 = 2;
const UNANSWERED: u8 = 0xff;

bitflags::bitflags! {
    /// The features this driver negotiates.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        const FLUSH = 1 << 9;
        const RING_INDIRECT_DESC = 1 << 28;
        const RING_EVENT_IDX = 1 << 29;
        const VERSION_1 = 1 << 32;
    }
}

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// The device reported an I/O error.
    Io,
    /// The device refused the request (read-only, flush without
    /// `VIRTIO_BLK_F_FLUSH`).
    Unsupported,
    /// The buffer is empty or not whole sectors.
    Unaligned,
    /// The queue failed, or the device broke the virtio protocol and is no
    /// longer driven.
    Driver,
}

/// A request: the buffer of a read or a write moves into the driver.
#[derive(Debug)]
pub enum Request {
    /// Fills `buf` (whole sectors) from `sector`.
    Read {
        /// First sector to read.
        sector: u64,
        /// Receives the data; its length says how many sectors.
        buf: Vec<u8>,
    },
    /// Writes `buf` (whole sectors) at `sector`.
    Write {
        /// First sector to write.
        sector: u64,
        /// The data; its length says how many sectors.
        buf: Vec<u8>,
    },
    /// Makes every write completed before it durable.
    Flush,
}

/// A request the device may hold: its buffers, owned here.
struct InFlight {
    request: Request,
    header: Box<[u8; 16]>,
    status: Box<[u8; 1]>,
    state: State,
}

enum State {
    /// The device holds it; wake this task when it is done.
    Waiting(Option<Waker>),
    /// Its task is gone: free it when the device is done.
    Abandoned,
    /// Done, until its task takes the result.
    Done(Result<(), BlkError>),
}

impl InFlight {
    fn new(request: Request) -> Self {
        let (kind, sector) = match request {
            Request::Read { sector, .. } => (0u32, sector),
            Request::Write { sector, .. } => (1, sector),
            Request::Flush => (4, 0),
        };
        let mut header = Box::new([0; 16]);
        header[..4].copy_from_slice(&kind.to_le_bytes());
        header[8..].copy_from_slice(&sector.to_le_bytes());
        Self { request, header, status: Box::new([UNANSWERED]), state: State::Waiting(None) }
    }

    /// Calls `f` with the buffers the device reads, then those it writes:
    /// the header, the data (read by a write, written by a read; none for
    /// a flush), the status.
    fn buffers<R>(&mut self, f: impl for<'a> FnOnce(&'a [&'a [u8]], &'a mut [&'a mut [u8]]) -> R) -> R {
        let (header, status) = (&self.header[..], &mut self.status[..]);
        match &mut self.request {
            Request::Read { buf, .. } => f(&[header], &mut [buf, status]),
            Request::Write { buf, .. } => f(&[header, buf], &mut [status]),
            Request::Flush => f(&[header], &mut [status]),
        }
    }

    /// The request's buffer (empty for a flush).
    fn into_buf(self) -> Vec<u8> {
        match self.request {
            Request::Read { buf, .. } | Request::Write { buf, .. } => buf,
            Request::Flush => Vec::new(),
        }
    }
}

/// A virtio block device and its requests, by request number. A finished
/// request stays until its task takes the result, while the device may
/// already reuse its descriptor token for another.
pub struct VirtioBlk<H: Hal, T: Transport> {
    transport: T,
    queue: VirtQueue<H, QUEUE_SIZE>,
    sectors: u64,
    can_flush: bool,
    in_flight: BTreeMap<u64, InFlight>,
    /// Request numbers of the tokens the device holds.
    tokens: BTreeMap<u16, u64>,
    next_id: u64,
    /// Tasks waiting for a free descriptor.
    waiting_for_room: Vec<Waker>,
    /// Why the device was failed, if it misbehaved.
    failed: Option<&'static str>,
    /// The requests a failed device held: never freed.
    lent: Vec<InFlight>,
}

/// A submitted request, to poll with [`VirtioBlk::poll`], or to give up
/// with [`VirtioBlk::abandon`].
#[derive(Debug)]
#[must_use = "a ticket is polled until done or abandoned"]
pub struct Ticket(u64);

impl<H: Hal, T: Transport> VirtioBlk<H, T> {
    /// Initialises the device.
    pub fn new(mut transport: T) -> Result<Self, Error> {
        let error = |e| Error::msg(alloc::format!("cannot initialise: {e}"));
        let features = transport.begin_init(Features::all());
        let config = |offset| transport.read_config_space::<u32>(offset);
        let sectors = transport.read_consistent(|| Ok(u64::from(config(0)?) | u64::from(config(4)?) << 32));
        let sectors = sectors.map_err(error)?;
        let indirect = features.contains(Features::RING_INDIRECT_DESC);
        let event_idx = features.contains(Features::RING_EVENT_IDX);
        let mut queue = VirtQueue::new(&mut transport, QUEUE, indirect, event_idx).map_err(error)?;
        transport.finish_init();
        queue.set_dev_notify(true);
        Ok(Self {
            transport,
            queue,
            sectors,
            can_flush: features.contains(Features::FLUSH),
            in_flight: BTreeMap::new(),
            tokens: BTreeMap::new(),
            next_id: 0,
            waiting_for_room: Vec::new(),
            failed: None,
            lent: Vec::new(),
        })
    }

    /// Capacity in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Whether the device honours flush (`VIRTIO_BLK_F_FLUSH`).
    pub fn can_flush(&self) -> bool {
        self.can_flush
    }

    /// Why the driver stopped driving the device, if it misbehaved.
    pub fn failed(&self) -> Option<&'static str> {
        self.failed
    }

    /// Queues `request` and takes it (with its buffer); leaves it and
    /// returns `Pending` (after registering `waker`) while the queue is
    /// full.
    pub fn submit(&mut self, request: &mut Option<Request>, waker: &Waker) -> Poll<Result<Ticket, BlkError>> {
        // Completions first: they free descriptors, and a device's claim to
        // have finished a request is checked before its descriptors are
        // reused for another.
        self.complete();
        if self.failed.is_some() {
            return Poll::Ready(Err(BlkError::Driver));
        }
        match request {
            Some(Request::Read { buf, .. } | Request::Write { buf, .. })
                if buf.is_empty() || !buf.len().is_multiple_of(SECTOR_SIZE) =>
            {
                return Poll::Ready(Err(BlkError::Unaligned));
            }
            Some(Request::Flush) if !self.can_flush => return Poll::Ready(Err(BlkError::Unsupported)),
            Some(_) => {}
            None => return Poll::Ready(Err(BlkError::Driver)), // submitted already
        }
        let mut entry = InFlight::new(request.take().expect("matched above"));
        // SAFETY: the buffers move into `in_flight` below and stay there
        // (or in `lent`), untouched, until the device completes this token;
        // moving a Vec or Box does not move the bytes they point to.
        let added = entry.buffers(|inputs, outputs| unsafe { self.queue.add(inputs, outputs) });
        match added {
            Ok(token) => {
                if self.queue.should_notify() {
                    self.transport.notify(QUEUE);
                }
                let id = self.next_id;
                self.next_id += 1;
                self.in_flight.insert(id, entry);
                self.tokens.insert(token, id);
                Poll::Ready(Ok(Ticket(id)))
            }
            Err(virtio_drivers::Error::QueueFull) => {
                *request = Some(entry.request);
                self.waiting_for_room.push(waker.clone());
                Poll::Pending
            }
            Err(e) => {
                log::warn!("virtio-blk: submit: {e}");
                Poll::Ready(Err(BlkError::Driver))
            }
        }
    }

    /// The result of `ticket` (the buffer of a read or write, read into or
    /// written; an empty one for a flush), once the device is done with it.
    pub fn poll(&mut self, ticket: &Ticket, waker: &Waker) -> Poll<Result<Vec<u8>, BlkError>> {
        self.complete();
        let Some(entry) = self.in_flight.get_mut(&ticket.0) else {
            return Poll::Ready(Err(BlkError::Driver)); // lent to a failed device
        };
        if let State::Waiting(task) = &mut entry.state {
            *task = Some(waker.clone());
            return Poll::Pending;
        }
        // Done: abandoned tickets were consumed, so cannot be polled.
        match self.in_flight.remove(&ticket.0) {
            Some(InFlight { state: State::Done(Err(e)), .. }) => Poll::Ready(Err(e)),
            Some(entry @ InFlight { state: State::Done(Ok(())), .. }) => Poll::Ready(Ok(entry.into_buf())),
            _ => Poll::Ready(Err(BlkError::Driver)),
        }
    }

    /// Gives up on `ticket`: its buffer is freed now if the device is done
    /// with it, or when the device completes it. Never waits.
    pub fn abandon(&mut self, ticket: Ticket) {
        if let Some(entry) = self.in_flight.get_mut(&ticket.0) {
            match entry.state {
                State::Waiting(_) => entry.state = State::Abandoned,
                State::Done(_) | State::Abandoned => drop(self.in_flight.remove(&ticket.0)),
            }
        }
    }

    /// Acknowledges the device's interrupt (only the handler needs to: the
    /// status read is a VM exit) and takes finished requests off the ring.
    pub fn on_interrupt(&mut self) {
        self.transport.ack_interrupt();
        self.complete();
    }

    /// Takes finished requests off the used ring (in its order) and wakes
    /// their tasks; called on interrupts, submits and polls. Each turn
    /// retires a request or fails the device, so the loop ends.
    pub fn complete(&mut self) {
        while self.failed.is_none()
            && let Some(token) = self.queue.peek_used()
        {
            // Checked before virtio-drivers pops it: it indexes its
            // descriptor table with the token.
            let Some(entry) = self.tokens.remove(&token).and_then(|id| Some((id, self.in_flight.get_mut(&id)?))) else {
                return self.fail("completed a request it was not given");
            };
            let (id, entry) = entry;
            // SAFETY: the same buffers given to `add` for this token, kept
            // untouched in `in_flight` since.
            let popped = entry.buffers(|inputs, outputs| unsafe { self.queue.pop_used(token, inputs, outputs) });
            let result = match (popped, entry.status[0]) {
                (Ok(_), OK) => Ok(()),
                (Ok(_), IO_ERROR) => Err(BlkError::Io),
                (Ok(_), UNSUPPORTED) => Err(BlkError::Unsupported),
                (Ok(_), _) => return self.fail("completed a request without a valid status"),
                // Not popped: the ring changed under the driver.
                (Err(_), _) => return self.fail("changed its used ring while it was read"),
            };
            match core::mem::replace(&mut entry.state, State::Done(result)) {
                State::Waiting(task) => task.into_iter().for_each(Waker::wake),
                _ => drop(self.in_flight.remove(&id)), // abandoned: free it now
            }
            self.waiting_for_room.drain(..).for_each(Waker::wake);
        }
    }

    /// Stops driving the device: requests it holds end with an error and
    /// their buffers stay lent; tasks waiting for room are woken to fail.
    fn fail(&mut self, why: &'static str) {
        log::error!("virtio-blk: the device {why}; it is no longer driven");
        self.failed = Some(why);
        self.tokens.clear();
        let (done, held) = core::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|(_, entry)| matches!(entry.state, State::Done(_)));
        self.in_flight = done;
        for (_, mut entry) in held {
            if let State::Waiting(Some(task)) = core::mem::replace(&mut entry.state, State::Abandoned) {
                task.wake();
            }
            self.lent.push(entry);
        }
        self.waiting_for_room.drain(..).for_each(Waker::wake);
    }

    /// Requests whose buffers the driver holds: in flight, done but not
    /// yet taken, or lent to a failed device.
    #[doc(hidden)]
    pub fn requests(&self) -> usize {
        self.in_flight.len() + self.lent.len()
    }
}

impl<H: Hal, T: Transport> Drop for VirtioBlk<H, T> {
    fn drop(&mut self) {
        // The queue's memory goes with the driver: tell the device first.
        self.transport.queue_unset(QUEUE);
    }
}
