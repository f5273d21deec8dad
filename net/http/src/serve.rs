//! The server loop: heads, bodies, the handler, responses, keep-alive.

use crate::body::{BodyError, Pipe};
use crate::budget::Budget;
use crate::clock::{Clock, UnikernelClock};
use crate::conn::{Conn, Step};
use crate::limits::Limits;
use crate::message::{Request, Response};
use crate::metrics;
use alloc::rc::Rc;
use core::cell::Cell;
use core::fmt;
use core::pin::pin;
use embedded_io_async::{Read, Write};
use futures_util::future::{Either, select};

/// A server's limits, memory budget, open connections and clock. Clones
/// share the budget and the connection count: clone one `Server` for every
/// connection.
#[derive(Clone, Debug)]
pub struct Server<C = UnikernelClock> {
    limits: Limits,
    budget: Budget,
    open: Rc<Cell<usize>>,
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
        Self { budget: Budget::new(limits.memory_budget), open: Rc::default(), limits, clock }
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

    /// Connections being served now.
    pub fn open_connections(&self) -> usize {
        self.open.get()
    }
}

/// A connection counted in [`Server::open_connections`] until dropped.
struct Open(Rc<Cell<usize>>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
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
/// crate docs for what each refusal looks like). Each request's body is
/// read in full (and paid for from the budget) before `handler` sees it.
pub async fn serve<S: Read + Write, C: Clock>(
    conn: S,
    server: &Server<C>,
    handler: impl AsyncFn(Request) -> Response,
) -> Result<(), Error<S::Error>> {
    serve_streaming(conn, server, async |mut req| match req.buffer_body().await {
        Ok(()) => call(&handler, req).await,
        Err(refusal) => refusal,
    })
    .await
}

/// Calls `handler` with a request whose body is buffered, and makes the
/// body's budget cover the response unless the handler brought its own.
pub(crate) async fn call(handler: &impl AsyncFn(Request) -> Response, mut req: Request) -> Response {
    let held = req.take_reservation();
    let response = handler(req).await;
    match held {
        Some(held) if !response.has_reservation() => response.with_reservation(held),
        _ => response,
    }
}

/// [`serve`], but `handler` gets each request before its body: it reads the
/// body as it comes ([`Request::read_body`], for uploads larger than
/// `max_body` or the budget), buffers it ([`Request::buffer_body`]) or
/// ignores it (the connection is then closed after the response).
pub async fn serve_streaming<S: Read + Write, C: Clock>(
    conn: S,
    server: &Server<C>,
    handler: impl AsyncFn(Request) -> Response,
) -> Result<(), Error<S::Error>> {
    let (limits, budget) = (&server.limits, &server.budget);
    let mut conn = Conn::new(conn, &server.clock, limits);
    metrics::CONNECTIONS.inc();
    if server.open.get() >= limits.max_connections {
        return conn.refuse(Response::unavailable(), budget).await;
    }
    server.open.set(server.open.get() + 1);
    let _open = Open(server.open.clone());
    loop {
        let head = match conn.read_head().await? {
            Step::Done(head) => head,
            Step::Closed => return Ok(()),
            Step::Refuse(response) => return conn.refuse(response, budget).await,
        };
        let deadline = conn.body_deadline(head.body_len);
        let pipe = Rc::new(Pipe::new(head.body_len));
        let (head_only, keep_alive, version) = (head.method == "HEAD", head.keep_alive, head.version);
        let incoming = (head.body_len, pipe.clone());
        let req = Request::incoming(head.method, head.path, head.headers, incoming, (budget.clone(), limits.max_body));
        metrics::REQUESTS.inc();
        // The handler runs while the body is moved to it as it asks.
        let (response, pumped) = {
            let (handled, pumping) = (pin!(handler(req)), pin!(conn.pump(&pipe, deadline)));
            match select(handled, pumping).await {
                Either::Left((response, _)) => (response, Ok(())),
                Either::Right((pumped, handled)) => (handled.await, pumped),
            }
        };
        pumped?;
        match pipe.failed() {
            Some(BodyError::Closed) => return Ok(()),
            Some(BodyError::TimedOut) => return conn.refuse(response, budget).await,
            None => {}
        }
        let response = covered(response, budget);
        // Unread body bytes stand between this request and the next.
        let keep_alive = keep_alive && pipe.finished();
        if !conn.respond(response, head_only, keep_alive, (version, budget)).await? {
            return conn.close().await;
        }
    }
}

/// The response, its body paid for from `budget` (by the reservation the
/// handler or the request brought, resized), or `503` when it does not fit.
fn covered(mut response: Response, budget: &Budget) -> Response {
    let fits = match response.take_reservation() {
        Some(mut cover) => cover.resize(response.body.len()).then_some(cover),
        None => budget.reserve(response.body.len()),
    };
    match fits {
        Some(cover) => response.with_reservation(cover),
        None => Response::unavailable(),
    }
}
