//! One connection's reads and writes, each under its deadline.

use crate::body::{BodyError, Pipe};
use crate::budget::Budget;
use crate::clock::{Clock, before};
use crate::head::{self, Head};
use crate::limits::Limits;
use crate::message::{BodySource, Framing, Response};
use crate::serve::Error;
use alloc::format;
use alloc::vec::Vec;
use core::time::Duration;
use embedded_io_async::{Read, Write};
use futures_util::StreamExt;

/// The head buffer starts this small and doubles up to `max_head`; body
/// buffers grow by at least this much, and move to handlers at most this
/// much at a time.
pub(crate) const CHUNK: usize = 4 * 1024;

/// Parts of one message up to this many bytes in all are joined into one
/// write: over TLS each write is a record of its own (one more encryption
/// and 22 more bytes), and a head with a small body belongs in one.
const JOIN: usize = CHUNK;

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
            self.grow((self.buf.len() * 2).max(CHUNK).min(self.limits.max_head));
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

    /// The deadline of a `len`-byte body whose head ends now.
    pub fn body_deadline(&self, len: usize) -> Duration {
        self.clock.now() + self.limits.body_timeout + self.limits.transfer_time(len)
    }

    /// Moves the body into `pipe` as the handler asks for it, before
    /// `deadline`; each read also gets the idle timeout (a body may not
    /// pause long). Ends once the body is all moved or has failed.
    pub async fn pump(&mut self, pipe: &Pipe, deadline: Duration) -> Result<(), Error<S::Error>> {
        while pipe.remaining() > 0 {
            pipe.wanted().await;
            if self.filled == 0 {
                self.grow(CHUNK);
                let deadline = deadline.min(self.clock.now() + self.limits.idle_timeout);
                match before(self.clock, deadline, self.io.read(&mut self.buf)).await {
                    None => pipe.fail(BodyError::TimedOut),
                    Some(Ok(0)) => pipe.fail(BodyError::Closed),
                    Some(Ok(n)) => self.filled = n,
                    Some(Err(e)) => {
                        pipe.fail(BodyError::Closed);
                        return Err(Error::Io(e));
                    }
                }
                if pipe.failed().is_some() {
                    return Ok(());
                }
            }
            // Bytes past the body are the next (pipelined) request's.
            let n = self.filled.min(pipe.remaining()).min(CHUNK);
            pipe.fill(&self.buf[..n]);
            self.consume(n);
        }
        Ok(())
    }

    /// Sends `response` (without its body for `HEAD`) to a client of this
    /// HTTP/1 minor `version`, each part before its write deadline; `Ok`
    /// says whether the connection may serve another request.
    pub async fn respond(
        &mut self,
        mut response: Response,
        head_only: bool,
        keep_alive: bool,
        (version, budget): (u8, &Budget),
    ) -> Result<bool, Error<S::Error>> {
        let framing = response.framing(version);
        let keep_alive = keep_alive && framing != Framing::UntilClose;
        let source = response.take_source();
        let head = response.head_framed(framing, keep_alive);
        let body: &[u8] = if head_only || source.is_some() { &[] } else { &response.body };
        let mut sent = self.send(&[head.as_bytes(), body]).await;
        let mut whole = true;
        if let (Some((chunks, _)), false, Ok(())) = (source, head_only, &sent) {
            (sent, whole) = match self.send_source(chunks, framing, budget).await {
                Ok(whole) => (Ok(()), whole),
                Err(e) => (Err(e), false),
            };
        }
        self.idle_since = self.clock.now();
        if self.filled == 0 {
            // An idle connection holds no buffer.
            self.buf = Vec::new();
        }
        sent.map(|()| keep_alive && whole)
    }

    /// Sends a streamed body as `framing` says, each chunk paid for from
    /// `budget` while it is written; `Ok(false)` when it was cut short.
    async fn send_source(
        &mut self,
        mut chunks: BodySource,
        framing: Framing,
        budget: &Budget,
    ) -> Result<bool, Error<S::Error>> {
        let mut left = match framing {
            Framing::Length(length) => length,
            _ => u64::MAX,
        };
        while let Some(chunk) = chunks.next().await {
            // An empty chunk would end a chunked body.
            let len = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            if len == 0 {
                continue;
            }
            let Some(_paid) = budget.reserve(chunk.len()) else { return Ok(false) };
            let size = format!("{len:x}\r\n");
            let parts: [&[u8]; 3] = match framing {
                Framing::Chunked => [size.as_bytes(), &chunk, b"\r\n"],
                _ => [&[], &chunk[..len], &[]],
            };
            self.send(&parts).await?;
            left -= len as u64;
            if left == 0 {
                break;
            }
        }
        Ok(match framing {
            Framing::Chunked => self.send(&[b"0\r\n\r\n"]).await.is_ok(),
            Framing::Length(_) => left == 0,
            Framing::UntilClose => false,
        })
    }

    /// Writes `parts` before the write deadline for their length.
    async fn send(&mut self, parts: &[&[u8]]) -> Result<(), Error<S::Error>> {
        let len = parts.iter().map(|p| p.len()).sum();
        let joined: Vec<u8>;
        let one: [&[u8]; 1];
        let parts = match parts.iter().filter(|p| !p.is_empty()).count() > 1 && len <= JOIN {
            true => {
                joined = parts.concat();
                one = [&joined];
                &one[..]
            }
            false => parts,
        };
        let deadline = self.clock.now() + self.limits.write_timeout + self.limits.transfer_time(len);
        let io = &mut self.io;
        let write = async {
            for part in parts {
                write_all(io, part).await?;
            }
            Ok(())
        };
        before(self.clock, deadline, write).await.unwrap_or(Err(Error::TimedOut))
    }

    /// Sends `response` and closes the connection.
    pub async fn refuse(mut self, response: Response, budget: &Budget) -> Result<(), Error<S::Error>> {
        crate::metrics::REFUSED.inc();
        self.respond(response, false, false, (1, budget)).await?;
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

    /// Makes room to read: a full buffer grows to `len`.
    fn grow(&mut self, len: usize) {
        if self.filled == self.buf.len() {
            self.buf.resize(len.max(self.buf.len()), 0);
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
