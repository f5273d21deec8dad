//! The recorder: a fixed ring of events, drained to the host channel.

use super::{Event, Kind, SIZE};
use crate::channel::{self, CHUNK, stream};
use crate::sync::RawMutex;
use crate::time::Instant;
use core::cell::RefCell;
use embassy_sync::blocking_mutex::Mutex;

/// Events the ring holds between two flushes: 96 KiB, allocated with the
/// image (recording never allocates, as an interrupt handler may record).
const CAPACITY: usize = 4096;
/// Events per channel send: one channel line each.
const BATCH: usize = CHUNK / SIZE;

struct Ring {
    events: [Event; CAPACITY],
    /// Index of the oldest event.
    head: usize,
    len: usize,
    /// Events dropped since the last flush, the ring being full.
    dropped: u32,
}

static RING: Mutex<RawMutex, RefCell<Ring>> = Mutex::new(RefCell::new(Ring {
    events: [Event { time: 0, kind: 0, a: 0, b: 0 }; CAPACITY],
    head: 0,
    len: 0,
    dropped: 0,
}));

crate::vmm_records!(crate::vmm::Record::stream(stream::TRACE, "trace"));

/// Records an event now (the `trace_event!` macro calls this).
pub fn record(kind: Kind, a: u32, b: u64) {
    let event = Event { time: Instant::now().as_nanos(), kind: kind as u16, a, b };
    RING.lock(|ring| {
        let mut ring = ring.borrow_mut();
        if ring.len == CAPACITY {
            ring.dropped = ring.dropped.saturating_add(1);
            return;
        }
        let at = (ring.head + ring.len) % CAPACITY;
        ring.events[at] = event;
        ring.len += 1;
    });
}

/// Sends the recorded events to the host; the executor calls it before it
/// idles and the runtime at exit, and an application may call it at any
/// time. Events recorded meanwhile (by interrupts) wait for the next one.
pub fn flush() {
    let started = Instant::now().as_nanos();
    let dropped = RING.lock(|ring| core::mem::take(&mut ring.borrow_mut().dropped));
    if dropped > 0 {
        record(Kind::Dropped, dropped, 0);
    }
    let mut sent = false;
    loop {
        let mut batch = [0u8; BATCH * SIZE];
        let taken = RING.lock(|ring| {
            let mut ring = ring.borrow_mut();
            let taken = ring.len.min(BATCH);
            for (i, out) in batch.chunks_exact_mut(SIZE).take(taken).enumerate() {
                out.copy_from_slice(&ring.events[(ring.head + i) % CAPACITY].encode());
            }
            ring.head = (ring.head + taken) % CAPACITY;
            ring.len -= taken;
            taken
        });
        if taken == 0 {
            break;
        }
        channel::send(stream::TRACE, &batch[..taken * SIZE]);
        sent = true;
    }
    if sent {
        // Shows the flush's own cost in the trace; sent with the next one.
        record(Kind::Flushed, 0, started);
    }
}

/// An application's span, ended when dropped ([`trace_span!`](crate::trace_span)).
#[must_use = "the span ends when this is dropped"]
pub struct Span(&'static str);

impl Span {
    /// Begins the span `name`.
    pub fn enter(name: &'static str) -> Self {
        record(Kind::SpanStart, name.len() as u32, name.as_ptr() as u64);
        Self(name)
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        record(Kind::SpanEnd, self.0.len() as u32, self.0.as_ptr() as u64);
    }
}
