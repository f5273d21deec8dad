//! The server loop: heads, bodies, the handler, responses, keep-alive.

use crate::budget::Budget;
use crate::clock::{Clock, UnikernelClock};
use crate::conn::{Conn, Step};
use crate::limits::Limits;
use crate::message::{Request, Response};
use crate::metrics;
use core::fmt;
use embedded_io_async::{Read, Write};

/// A server's limits, memory budget and clock. Clones share the budget:
/// clone one `Server` for every connection.
#[derive(Clone, Debug)]
pub struct Server<C = UnikernelClock> {
    limits: Limits,
    budget: Budget,
    clock: C,
}

impl Server {
    /// A server with `limits` on the runtime's clock.
    pub fn new(limits: Limits) -> Self {
        Self::with_clock(limits, UnikernelClock)
    }
}

impl<C: Clock> Server<C> {
    /// A server with `limits` on `clock` (a virtual one in tests).
    pub fn with_clock(limits: Limits, clock: C) -> Self {
        Self { budget: Budget::new(limits.memory_budget), limits, clock }
    }

    /// The limits this server enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The memory budget its connections share (for status pages, and for
    /// handlers that reserve before they build a large response).
    pub fn budget(&self) -> &Budget {
        &self.budget
    }
}

/// Why [`serve`] stopped early. A client that closes, idles or is refused
/// with a response ends it with `Ok`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error<E> {
    /// The stream failed.
    Io(E),
    /// The client did not take a response before the write deadline.
    TimedOut,
    /// The stream accepted no bytes.
    WriteZero,
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => e.fmt(f),
            Self::TimedOut => f.write_str("the client did not read the response in time"),
            Self::WriteZero => f.write_str("the stream accepted no bytes"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for Error<E> {}

/// Serves the requests of `conn` with `handler` until the client closes,
/// idles, misbehaves or asks to close, within `server`'s limits (see the
/// crate docs for what each refusal looks like).
pub async fn serve<S: Read + Write, C: Clock>(
    conn: S,
    server: &Server<C>,
    handler: impl AsyncFn(Request) -> Response,
) -> Result<(), Error<S::Error>> {
    let limits = &server.limits;
    let mut conn = Conn::new(conn, &server.clock, limits);
    metrics::CONNECTIONS.inc();
    loop {
        let head = match conn.read_head().await? {
            Step::Done(head) => head,
            Step::Closed => return Ok(()),
            Step::Refuse(response) => return conn.refuse(response).await,
        };
        if head.body_len > limits.max_body {
            return conn.refuse(Response::text("413 Content Too Large", "body too large\n")).await;
        }
        // Paid before the first byte is buffered: a client that announces a
        // body and sends nothing holds budget, never memory beyond it.
        let Some(reservation) = server.budget.reserve(head.body_len) else {
            return conn.refuse(Response::unavailable()).await;
        };
        let body = match conn.read_body(head.body_len).await? {
            Step::Done(body) => body,
            Step::Closed => return Ok(()),
            Step::Refuse(response) => return conn.refuse(response).await,
        };
        let head_only = head.method == "HEAD";
        metrics::REQUESTS.inc();
        let mut response = handler(Request { method: head.method, path: head.path, body }).await;
        // The request is gone: its reservation (or the handler's) pays for
        // the response body until it is sent.
        let mut cover = response.take_reservation().unwrap_or(reservation);
        let (response, cover) = if cover.resize(response.body.len()) {
            (response, Some(cover))
        } else {
            drop((response, cover));
            (Response::unavailable(), None)
        };
        conn.respond(&response, head_only, head.keep_alive).await?;
        drop((response, cover));
        if !head.keep_alive {
            return conn.close().await;
        }
    }
}
