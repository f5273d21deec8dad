//! Requests as handlers see them, and their responses.

use crate::body::{BodyError, Pipe};
use crate::budget::{Budget, Reservation};
use crate::headers::Headers;
use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use core::ops::Range;
use core::pin::Pin;
use futures_util::stream::Stream;

/// A request. Under [`crate::serve`] its body is read in full before the
/// handler runs; under [`crate::serve_streaming`] the handler reads it
/// ([`Request::read_body`]) or buffers it ([`Request::buffer_body`]).
#[derive(Debug)]
pub struct Request {
    /// The method as sent, such as `GET`.
    pub method: String,
    /// The request target as sent: path and query.
    pub path: String,
    /// The body once buffered, as long as its `Content-Length` said.
    pub body: Vec<u8>,
    /// The headers as sent (at most [`crate::MAX_HEADERS`]).
    pub headers: Headers,
    /// Path parameters a [`crate::Router`] pattern captured: names and
    /// where their values are in `path`.
    params: Vec<(&'static str, Range<usize>)>,
    incoming: Incoming,
}

/// The body still on the connection, and what buffering it may cost.
#[derive(Debug, Default)]
struct Incoming {
    len: usize,
    pipe: Option<Rc<Pipe>>,
    budget: Option<Budget>,
    max_body: usize,
    /// What the buffered body holds of the budget.
    reservation: Option<Reservation>,
}

impl Request {
    /// A request without headers or body (to test handlers and routers).
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            body: Vec::new(),
            headers: Headers::default(),
            params: Vec::new(),
            incoming: Incoming::default(),
        }
    }

    /// A request whose `len`-byte body comes through `pipe`.
    pub(crate) fn incoming(
        method: String,
        path: String,
        headers: Headers,
        (len, pipe): (usize, Rc<Pipe>),
        (budget, max_body): (Budget, usize),
    ) -> Self {
        let incoming = Incoming { len, pipe: Some(pipe), budget: Some(budget), max_body, reservation: None };
        Self { method, path, body: Vec::new(), headers, params: Vec::new(), incoming }
    }

    /// The first value of header `name` (any case), when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The path without the query.
    pub fn uri_path(&self) -> &str {
        self.path.split_once('?').map_or(&self.path, |(path, _)| path)
    }

    /// The query: what follows the first `?`, as sent.
    pub fn query(&self) -> Option<&str> {
        self.path.split_once('?').map(|(_, query)| query)
    }

    /// The first value of `name` in the query (`a=1&b=2`), as sent (not
    /// percent-decoded); `""` for a bare `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()?
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find_map(|(key, value)| (key == name).then_some(value))
    }

    /// The value a [`crate::Router`] pattern's `{name}` matched, as sent.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| *n == name).map(|(_, at)| &self.path[at.clone()])
    }

    pub(crate) fn set_params(&mut self, params: Vec<(&'static str, Range<usize>)>) {
        self.params = params;
    }

    /// The body's length (its `Content-Length`).
    pub fn content_length(&self) -> usize {
        self.incoming.len
    }

    /// Reads the next bytes of a body not buffered yet into `buf`; 0 at
    /// its end. The body has its deadline (`body_timeout` plus its length
    /// at `min_rate`) however slowly the handler reads.
    pub async fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError> {
        match &self.incoming.pipe {
            Some(pipe) => pipe.read(buf).await,
            None => Ok(0),
        }
    }

    /// Reads the whole body into [`Request::body`], paid for from the
    /// server's budget first: `Err` holds the refusal to send (`413` over
    /// `max_body`, `503` when the budget has no room, `408` when too slow).
    /// Buffering twice does nothing.
    pub async fn buffer_body(&mut self) -> Result<(), Response> {
        let Some(pipe) = self.incoming.pipe.take() else { return Ok(()) };
        let len = self.incoming.len;
        if len > self.incoming.max_body {
            return Err(refused(Response::text("413 Content Too Large", "body too large\n")));
        }
        // Paid before the first byte is buffered: a client that announces a
        // body and sends nothing holds budget, never memory beyond it.
        let Some(reservation) = self.incoming.budget.as_ref().and_then(|b| b.reserve(len)) else {
            return Err(refused(Response::unavailable()));
        };
        self.incoming.reservation = Some(reservation);
        // The buffer grows as bytes arrive, never past `len`.
        let body = &mut self.body;
        while body.len() < len {
            if body.len() == body.capacity() {
                body.reserve_exact((body.capacity() * 2).max(crate::conn::CHUNK).min(len) - body.len());
            }
            let start = body.len();
            body.resize(body.capacity(), 0);
            let read = pipe.read(&mut body[start..]).await;
            body.truncate(start + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) | Err(BodyError::Closed) => return Err(Response::text("400 Bad Request", "body cut short\n")),
                Err(BodyError::TimedOut) => {
                    return Err(refused(Response::text("408 Request Timeout", "request body too slow\n")));
                }
                Ok(_) => {}
            }
        }
        Ok(())
    }

    /// The budget the buffered body holds (the server moves it to the
    /// response).
    pub(crate) fn take_reservation(&mut self) -> Option<Reservation> {
        self.incoming.reservation.take()
    }
}

/// Counts a refusal by the server's limits.
fn refused(response: Response) -> Response {
    crate::metrics::REFUSED.inc();
    response
}

/// A source of response body chunks (see [`Response::stream`]).
pub type BodySource = Pin<Box<dyn Stream<Item = Vec<u8>>>>;

/// A response: a body in memory sent with a `Content-Length`, or one from a
/// [`BodySource`] sent as it comes.
#[derive(Debug)]
pub struct Response {
    /// Code and reason of the status line, such as `200 OK`.
    pub status: &'static str,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body sent (unless the response streams one).
    pub body: Vec<u8>,
    /// `Retry-After` in seconds.
    retry_after: Option<u32>,
    /// Budget the handler reserved for the body before it built it.
    reservation: Option<Reservation>,
    headers: Vec<(&'static str, String)>,
    source: Option<Source>,
}

/// A streamed body and the length it promises, if any.
struct Source {
    chunks: BodySource,
    length: Option<u64>,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source").field("length", &self.length).finish_non_exhaustive()
    }
}

/// How a response's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(u64),
    Chunked,
    /// HTTP/1.0 clients know no chunks: the body ends with the connection.
    UntilClose,
}

impl Response {
    /// A response with this status line, content type and body.
    pub fn new(status: &'static str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
            retry_after: None,
            reservation: None,
            headers: Vec::new(),
            source: None,
        }
    }

    /// A `text/plain` response.
    pub fn text(status: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "text/plain", body)
    }

    /// A response whose body comes from `chunks` as the client takes it,
    /// with `Transfer-Encoding: chunked` (or [`Response::with_length`]).
    /// Each chunk is paid for from the budget while it is written, so a
    /// body may be far larger than the budget; a chunk that does not fit
    /// ends the connection mid-body. Each chunk has the write deadline for
    /// its length; the source's own pace is the application's to bound.
    pub fn stream(
        status: &'static str,
        content_type: &'static str,
        chunks: impl Stream<Item = Vec<u8>> + 'static,
    ) -> Self {
        Self { source: Some(Source { chunks: Box::pin(chunks), length: None }), ..Self::new(status, content_type, "") }
    }

    /// Sends a streamed body with `Content-Length: length` rather than in
    /// chunks: its first `length` bytes. A source that ends short ends the
    /// connection, so the client sees the cut.
    pub fn with_length(mut self, length: u64) -> Self {
        if let Some(source) = &mut self.source {
            source.length = Some(length);
        }
        self
    }

    /// Adds a header. Values holding CR or LF (a handler echoing a client,
    /// say) would split the response: such a header is left out.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.contains(['\r', '\n']) {
            self.headers.push((name, value));
        }
        self
    }

    /// `503 Service Unavailable` with `Retry-After: 1`: the server is busy,
    /// not broken.
    pub fn unavailable() -> Self {
        Self { retry_after: Some(1), ..Self::text("503 Service Unavailable", "busy, retry later\n") }
    }

    /// Hands over budget the handler reserved before building the body (so
    /// the memory was paid for before it was allocated). The server makes
    /// it fit the body's length when it sends it; without one, it reserves
    /// the body's length then, and sends [`Response::unavailable`] instead
    /// when that does not fit.
    pub fn with_reservation(self, reservation: Reservation) -> Self {
        Self { reservation: Some(reservation), ..self }
    }

    pub(crate) fn take_reservation(&mut self) -> Option<Reservation> {
        self.reservation.take()
    }

    pub(crate) fn has_reservation(&self) -> bool {
        self.reservation.is_some()
    }

    pub(crate) fn take_source(&mut self) -> Option<(BodySource, Option<u64>)> {
        self.source.take().map(|s| (s.chunks, s.length))
    }

    /// How the body is delimited for a client of this HTTP/1 minor version.
    pub(crate) fn framing(&self, version: u8) -> Framing {
        match &self.source {
            None => Framing::Length(self.body.len() as u64),
            Some(Source { length: Some(length), .. }) => Framing::Length(*length),
            Some(_) if version >= 1 => Framing::Chunked,
            Some(_) => Framing::UntilClose,
        }
    }

    /// The status line and headers of a body in memory.
    #[cfg(test)]
    pub(crate) fn head(&self, keep_alive: bool) -> String {
        self.head_framed(Framing::Length(self.body.len() as u64), keep_alive)
    }

    /// The status line and headers.
    pub(crate) fn head_framed(&self, framing: Framing, keep_alive: bool) -> String {
        let mut head = String::new();
        // Writing to a String cannot fail.
        let _ =
            write!(head, "HTTP/1.1 {}\r\nServer: unikernel\r\nContent-Type: {}\r\n", self.status, self.content_type);
        let _ = match framing {
            Framing::Length(length) => write!(head, "Content-Length: {length}\r\n"),
            Framing::Chunked => write!(head, "Transfer-Encoding: chunked\r\n"),
            Framing::UntilClose => Ok(()),
        };
        if let Some(seconds) = self.retry_after {
            let _ = write!(head, "Retry-After: {seconds}\r\n");
        }
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let _ = write!(head, "Connection: {}\r\n\r\n", if keep_alive { "keep-alive" } else { "close" });
        head
    }
}
