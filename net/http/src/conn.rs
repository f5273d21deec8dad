//! One connection's reads and writes, each under its deadline.

use crate::clock::{Clock, before};
use crate::head::{self, Head};
use crate::limits::Limits;
use crate::message::Response;
use crate::serve::Error;
use alloc::format;
use alloc::vec::Vec;
use core::time::Duration;
use embedded_io_async::{Read, Write};

/// The head buffer starts this small and doubles up to `max_head`; body
/// buffers grow by at least this much (never past the announced length).
const CHUNK: usize = 4 * 1024;

/// How a step of the conversation ended.
pub(crate) enum Step<T> {
    Done(T),
    /// The client closed, or sent nothing before the idle deadline.
    Closed,
    /// The request cannot be served: send this, then close.
    Refuse(Response),
}

pub(crate) struct Conn<'a, S, C> {
    io: S,
    clock: &'a C,
    limits: &'a Limits,
    /// Bytes read but not consumed yet are `buf[..filled]`.
    buf: Vec<u8>,
    filled: usize,
    /// When the connection started or the last response was sent.
    idle_since: Duration,
}

impl<'a, S: Read + Write, C: Clock> Conn<'a, S, C> {
    pub fn new(io: S, clock: &'a C, limits: &'a Limits) -> Self {
        Self { io, clock, limits, buf: Vec::new(), filled: 0, idle_since: clock.now() }
    }

    /// Reads the next request head.
    pub async fn read_head(&mut self) -> Result<Step<Head>, Error<S::Error>> {
        // Pipelined bytes began their head when the previous response ended.
        let mut started = (self.filled > 0).then_some(self.idle_since);
        loop {
            if self.filled > 0 {
                match head::parse(&self.buf[..self.filled]) {
                    Ok(Some((head, len))) => {
                        self.consume(len);
                        return Ok(Step::Done(head));
                    }
                    Ok(None) => {}
                    Err(why) => return Ok(Step::Refuse(Response::text("400 Bad Request", format!("{why}\n")))),
                }
            }
            if self.filled >= self.limits.max_head {
                return Ok(Step::Refuse(Response::text("400 Bad Request", "request head too large\n")));
            }
            let deadline = match started {
                None => self.idle_since + self.limits.idle_timeout,
                Some(first_byte) => first_byte + self.limits.head_timeout,
            };
            if self.filled == self.buf.len() {
                let len = (self.buf.len() * 2).max(CHUNK).min(self.limits.max_head);
                self.buf.resize(len, 0);
            }
            match before(self.clock, deadline, self.io.read(&mut self.buf[self.filled..])).await {
                None if started.is_none() => return Ok(Step::Closed),
                None => return Ok(Step::Refuse(Response::text("408 Request Timeout", "request head too slow\n"))),
                Some(Ok(0)) => return Ok(Step::Closed),
                Some(Ok(n)) => {
                    self.filled += n;
                    started.get_or_insert(self.clock.now());
                }
                Some(Err(e)) => return Err(Error::Io(e)),
            }
        }
    }

    /// Reads a `len`-byte body, some of which may be buffered already. The
    /// buffer grows with the bytes that arrive, never past `len`.
    pub async fn read_body(&mut self, len: usize) -> Result<Step<Vec<u8>>, Error<S::Error>> {
        let deadline = self.clock.now() + self.limits.body_timeout + self.limits.transfer_time(len);
        let buffered = len.min(self.filled);
        let mut body = Vec::with_capacity(len.min(buffered.max(CHUNK)));
        body.extend_from_slice(&self.buf[..buffered]);
        self.consume(buffered);
        while body.len() < len {
            if body.len() == body.capacity() {
                body.reserve_exact((body.capacity() * 2).max(CHUNK).min(len) - body.len());
            }
            let start = body.len();
            body.resize(body.capacity().min(start + CHUNK), 0);
            // Each read also gets the idle timeout: a body may not pause long.
            let deadline = deadline.min(self.clock.now() + self.limits.idle_timeout);
            let read = before(self.clock, deadline, self.io.read(&mut body[start..])).await;
            let n = match read {
                None => return Ok(Step::Refuse(Response::text("408 Request Timeout", "request body too slow\n"))),
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(Error::Io(e)),
            };
            body.truncate(start + n);
            if n == 0 {
                return Ok(Step::Closed);
            }
        }
        Ok(Step::Done(body))
    }

    /// Sends `response` (without its body for `HEAD`) before the write
    /// deadline.
    pub async fn respond(
        &mut self,
        response: &Response,
        head_only: bool,
        keep_alive: bool,
    ) -> Result<(), Error<S::Error>> {
        let head = response.head(keep_alive);
        let body: &[u8] = if head_only { &[] } else { &response.body };
        let deadline =
            self.clock.now() + self.limits.write_timeout + self.limits.transfer_time(head.len() + body.len());
        let io = &mut self.io;
        let write = async {
            write_all(io, head.as_bytes()).await?;
            write_all(io, body).await
        };
        let written = before(self.clock, deadline, write).await.unwrap_or(Err(Error::TimedOut));
        self.idle_since = self.clock.now();
        if self.filled == 0 {
            // An idle connection holds no buffer.
            self.buf = Vec::new();
        }
        written
    }

    /// Sends `response` and closes the connection.
    pub async fn refuse(mut self, response: Response) -> Result<(), Error<S::Error>> {
        crate::metrics::REFUSED.inc();
        self.respond(&response, false, false).await?;
        self.close().await
    }

    /// Waits (up to the write timeout) until the client has what was sent;
    /// dropping the stream then closes it.
    pub async fn close(mut self) -> Result<(), Error<S::Error>> {
        let deadline = self.clock.now() + self.limits.write_timeout;
        match before(self.clock, deadline, self.io.flush()).await {
            None => Err(Error::TimedOut),
            Some(flushed) => flushed.map_err(Error::Io),
        }
    }

    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
    }
}

/// `Write::write_all`, but a stream that takes no bytes is an error, not a
/// panic.
async fn write_all<W: Write>(io: &mut W, mut bytes: &[u8]) -> Result<(), Error<W::Error>> {
    while !bytes.is_empty() {
        match io.write(bytes).await.map_err(Error::Io)? {
            0 => return Err(Error::WriteZero),
            n => bytes = &bytes[n..],
        }
    }
    Ok(())
}
