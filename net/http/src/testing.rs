//! The loop off the network, for tests and fuzzing: an in-memory [`Stream`]
//! whose client sends scripted bytes at scripted times, on a
//! [`VirtualClock`] that [`run`] moves straight to the next event whenever
//! everything waits. Deadlines are tested deterministically, and an hour of
//! slowloris takes microseconds.

use crate::clock::Clock;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::{Future, poll_fn};
use core::pin::pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

/// A clock that moves only when [`run`] moves it. Clones share the time.
#[derive(Clone, Debug, Default)]
pub struct VirtualClock(Rc<ClockState>);

#[derive(Debug, Default)]
struct ClockState {
    now: Cell<Duration>,
    /// The earliest time something waiting asked to be woken at.
    next_event: Cell<Option<Duration>>,
}

impl VirtualClock {
    /// A clock at zero with nothing waiting on it.
    pub fn new() -> Self {
        Self::default()
    }

    fn wake_at(&self, at: Duration) {
        let next = self.0.next_event.get().map_or(at, |next| next.min(at));
        self.0.next_event.set(Some(next));
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Duration {
        self.0.now.get()
    }

    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> {
        poll_fn(move |_| {
            if self.now() >= at {
                Poll::Ready(())
            } else {
                self.wake_at(at);
                Poll::Pending
            }
        })
    }
}

/// Polls that [`run`] allows: far more than any scripted conversation needs.
const MAX_POLLS: usize = 1_000_000;

/// Whether the future was woken since its last poll.
#[derive(Default)]
struct Woken(AtomicBool);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `future` to completion: polls it, again at once when it woke
/// itself, and whenever it waits, moves `clock` to the earliest time a
/// timer or a scripted client asked for.
///
/// # Panics
/// When the future waits for nothing that would ever wake it (on a real
/// network it would hang forever), or needs more than a million polls.
pub fn run<F: Future>(clock: &VirtualClock, future: F) -> F::Output {
    let mut future = pin!(future);
    let woken = Arc::new(Woken::default());
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    for _ in 0..MAX_POLLS {
        clock.0.next_event.set(None);
        woken.0.store(false, Ordering::Relaxed);
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        if woken.0.load(Ordering::Relaxed) {
            continue;
        }
        let next = clock.0.next_event.get().expect("the future waits for nothing: it would hang forever");
        clock.0.now.set(clock.now().max(next));
    }
    panic!("the future did not finish in {MAX_POLLS} polls");
}

/// What the client does once its script has been sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Closes its side: reads return 0.
    Close,
    /// Neither sends nor closes, ever.
    Hang,
    /// Resets the connection: reads fail.
    Reset,
}

/// The server's end of an in-memory connection to a scripted client.
#[derive(Debug)]
pub struct Stream {
    clock: VirtualClock,
    /// Bytes the client sends, each batch at its time.
    sends: VecDeque<(Duration, Vec<u8>)>,
    end: End,
    /// The client reads this many bytes in all, then stops reading.
    reads: usize,
    /// Most bytes one write takes.
    write_chunk: usize,
    received: Received,
}

/// What the server wrote to a [`Stream`], readable after the stream is gone.
#[derive(Clone, Debug, Default)]
pub struct Received(Rc<RefCell<Vec<u8>>>, Rc<Cell<usize>>);

impl Received {
    /// Everything the server has written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.borrow().clone()
    }

    /// How many writes took bytes (over TLS, each is a record of its own).
    pub fn writes(&self) -> usize {
        self.1.get()
    }
}

impl Stream {
    /// A client that sends nothing, hangs, and reads everything.
    pub fn new(clock: &VirtualClock) -> Self {
        Self {
            clock: clock.clone(),
            sends: VecDeque::new(),
            end: End::Hang,
            reads: usize::MAX,
            write_chunk: usize::MAX,
            received: Received::default(),
        }
    }

    /// The client sends `bytes` at `at` (or as soon as the previous batch
    /// is read, when that is later).
    pub fn send_at(mut self, at: Duration, bytes: &[u8]) -> Self {
        self.sends.push_back((at, bytes.to_vec()));
        self
    }

    /// The client sends `bytes` one at a time, one every `every` from `at`.
    pub fn drip(mut self, at: Duration, every: Duration, bytes: &[u8]) -> Self {
        let times = core::iter::successors(Some(at), |t| Some(*t + every));
        self.sends.extend(times.zip(bytes).map(|(t, &b)| (t, alloc::vec![b])));
        self
    }

    /// How the client behaves once its sends run out (see [`End`]).
    pub fn then(mut self, end: End) -> Self {
        self.end = end;
        self
    }

    /// The client reads `bytes` of the responses, then stops reading.
    pub fn reads(mut self, bytes: usize) -> Self {
        self.reads = bytes;
        self
    }

    /// Each write takes at most `bytes` (at least 1).
    pub fn write_chunk(mut self, bytes: usize) -> Self {
        self.write_chunk = bytes.max(1);
        self
    }

    /// A handle on what the server writes.
    pub fn received(&self) -> Received {
        self.received.clone()
    }
}

impl ErrorType for Stream {
    type Error = ErrorKind;
}

impl Read for Stream {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        poll_fn(|_| {
            let Some((at, bytes)) = self.sends.front_mut() else {
                return match self.end {
                    End::Close => Poll::Ready(Ok(0)),
                    End::Hang => Poll::Pending,
                    End::Reset => Poll::Ready(Err(ErrorKind::ConnectionReset)),
                };
            };
            if *at > self.clock.now() {
                self.clock.wake_at(*at);
                return Poll::Pending;
            }
            let n = buf.len().min(bytes.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            bytes.drain(..n);
            if bytes.is_empty() {
                self.sends.pop_front();
            }
            Poll::Ready(Ok(n))
        })
        .await
    }
}

impl Write for Stream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        let room = self.reads.saturating_sub(self.received.0.borrow().len());
        if buf.is_empty() {
            return Ok(0);
        }
        if room == 0 {
            // A client that stopped reading: the write waits forever.
            return poll_fn(|_| Poll::Pending).await;
        }
        let n = buf.len().min(self.write_chunk).min(room);
        self.received.0.borrow_mut().extend_from_slice(&buf[..n]);
        self.received.1.set(self.received.1.get() + 1);
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}
