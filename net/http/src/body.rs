//! Request bodies read as the handler asks for them. While a handler runs,
//! the server loop moves the body from the connection into a [`Pipe`] one
//! chunk at a time, and only when the handler wants more: a body is never
//! buffered unless the handler buffers it ([`crate::Request::buffer_body`],
//! which [`crate::serve`] does for every request), so uploads larger than
//! `max_body` can be streamed, and a body nobody reads costs nothing.

use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::future::poll_fn;
use core::task::{Poll, Waker};

/// Why a request body could not be read to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// The client did not send it before the body deadline (the server
    /// then answers with the handler's response and closes).
    TimedOut,
    /// The client closed or reset the connection (no response is sent).
    Closed,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TimedOut => "the request body was too slow",
            Self::Closed => "the client closed the connection mid-body",
        })
    }
}

impl core::error::Error for BodyError {}

impl embedded_io_async::Error for BodyError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        match self {
            Self::TimedOut => embedded_io_async::ErrorKind::TimedOut,
            Self::Closed => embedded_io_async::ErrorKind::ConnectionReset,
        }
    }
}

/// The body between the loop (which fills it) and the handler (which
/// drains it); both sides run in the connection's task.
#[derive(Debug)]
pub(crate) struct Pipe {
    /// Body bytes still on the connection.
    remaining: Cell<usize>,
    /// Bytes moved off the connection; `chunk[taken..]` are not read yet.
    chunk: RefCell<Vec<u8>>,
    taken: Cell<usize>,
    failed: Cell<Option<BodyError>>,
    /// The handler waits for bytes.
    wanted: Cell<bool>,
    reader: RefCell<Option<Waker>>,
    filler: RefCell<Option<Waker>>,
}

impl Pipe {
    pub fn new(len: usize) -> Self {
        Self {
            remaining: Cell::new(len),
            chunk: RefCell::new(Vec::new()),
            taken: Cell::new(0),
            failed: Cell::new(None),
            wanted: Cell::new(false),
            reader: RefCell::new(None),
            filler: RefCell::new(None),
        }
    }

    /// Body bytes still on the connection.
    pub fn remaining(&self) -> usize {
        self.remaining.get()
    }

    /// Whether the whole body was read by the handler.
    pub fn finished(&self) -> bool {
        self.remaining() == 0 && self.taken.get() == self.chunk.borrow().len() && self.failed().is_none()
    }

    pub fn failed(&self) -> Option<BodyError> {
        self.failed.get()
    }

    /// The handler's side: copies body bytes into `buf`, waiting for the
    /// loop to move more off the connection; 0 at the end of the body.
    pub async fn read(&self, buf: &mut [u8]) -> Result<usize, BodyError> {
        poll_fn(|cx| {
            let chunk = self.chunk.borrow();
            let taken = self.taken.get();
            if buf.is_empty() || taken < chunk.len() {
                let n = buf.len().min(chunk.len() - taken);
                buf[..n].copy_from_slice(&chunk[taken..taken + n]);
                self.taken.set(taken + n);
                return Poll::Ready(Ok(n));
            }
            if let Some(e) = self.failed() {
                return Poll::Ready(Err(e));
            }
            if self.remaining() == 0 {
                return Poll::Ready(Ok(0));
            }
            self.wanted.set(true);
            *self.reader.borrow_mut() = Some(cx.waker().clone());
            if let Some(filler) = self.filler.borrow_mut().take() {
                filler.wake();
            }
            Poll::Pending
        })
        .await
    }

    /// The loop's side: waits until the handler wants bytes.
    pub async fn wanted(&self) {
        poll_fn(|cx| {
            if self.wanted.get() {
                Poll::Ready(())
            } else {
                *self.filler.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// The loop's side: hands the handler the next bytes of the body.
    pub fn fill(&self, bytes: &[u8]) {
        let mut chunk = self.chunk.borrow_mut();
        chunk.clear();
        chunk.extend_from_slice(bytes);
        self.taken.set(0);
        self.remaining.set(self.remaining() - bytes.len());
        self.wake_reader();
    }

    /// The loop's side: the body will not come.
    pub fn fail(&self, why: BodyError) {
        self.failed.set(Some(why));
        self.wake_reader();
    }

    fn wake_reader(&self) {
        self.wanted.set(false);
        if let Some(reader) = self.reader.borrow_mut().take() {
            reader.wake();
        }
    }
}
