//! An HTTP/1.1 server loop for unikernels: [`serve`] answers the requests
//! of one connection with an async handler, and a [`Router`] picks the
//! handler by method and path pattern (`/kv/{key}`; `404`, `405` with
//! `Allow`). `httparse` reads the request head; handlers see its headers
//! ([`Request::header`]), query ([`Request::query_param`]) and path
//! parameters ([`Request::param`]). Request bodies come with a
//! `Content-Length` (chunked ones get `400`); [`serve`] buffers them, and
//! under [`serve_streaming`] handlers read them as they come
//! ([`Request::read_body`]). Responses are in memory or streamed from an
//! async source ([`Response::stream`]: chunked, or with a known length).
//! Connections are kept alive unless the client says otherwise (HTTP/1.0
//! only when it asks), and pipelined requests are answered in order.
//!
//! Hostile clients are the normal case, so every resource a client can hold
//! is bounded by [`Limits`] (safe defaults, all configurable):
//! - time: a deadline for a request's first byte (keep-alive idle), for the
//!   whole head, for the whole body and for writing the whole response, so
//!   a client that drips one byte at a time (slowloris) or stops reading is
//!   dropped; a late head or body gets `408 Request Timeout`;
//! - size: heads over `max_head` get `400`, bodies over `max_body` `413`;
//! - connections: at most `max_connections` at once per [`Server`]; the
//!   next get `503 Service Unavailable` with `Retry-After`;
//! - memory: request and response bodies are paid for from a [`Budget`]
//!   shared by every connection of a [`Server`]. A request whose announced
//!   body does not fit gets `503 Service Unavailable` with `Retry-After`, as
//!   does a response body that does not fit; body buffers grow as bytes
//!   arrive, never to an announced length up front. Running out of memory
//!   is never how the server says no. A streamed response pays for each
//!   chunk while it is written, so it may be far larger than the budget.
//!
//! ```no_run
//! use embedded_io_async::{Read, Write};
//! use unikernel_http::{Limits, Response, Server, serve};
//!
//! // For each accepted connection (a `unikernel_net::TcpStream`, say), in
//! // its own task, with one `Server` (limits and budget) shared by all.
//! async fn answer<S: Read + Write>(conn: S, server: &Server) {
//!     let _ = serve(conn, server, async |req| Response::text("200 OK", req.path)).await;
//! }
//!
//! # fn main() {
//! let server = Server::new(Limits { max_body: 1 << 20, ..Limits::default() });
//! # let _ = (server, answer::<unikernel_http::testing::Stream>);
//! # }
//! ```
//!
//! The loop is generic over the stream ([`embedded_io_async::Read`] +
//! [`Write`](embedded_io_async::Write), which `unikernel_net::TcpStream`
//! implements) and over the [`Clock`], so [`testing`] can run it over an
//! in-memory connection on a virtual clock: deterministic tests of
//! deadlines, and fuzzing.
#![cfg_attr(not(test), no_std)]
// The counting allocator in the unit tests is the only unsafe code.
#![cfg_attr(not(test), forbid(unsafe_code))]

extern crate alloc;

mod body;
mod budget;
mod clock;
mod conn;
mod head;
mod headers;
mod limits;
mod message;
pub mod metrics;
mod router;
mod serve;
pub mod testing;
#[cfg(test)]
mod tests;

pub use body::BodyError;
pub use budget::{Budget, Reservation};
pub use clock::{Clock, UnikernelClock};
pub use headers::{Headers, MAX_HEADERS};
pub use limits::Limits;
pub use message::{BodySource, Request, Response};
pub use metrics::metrics;
pub use router::Router;
pub use serve::{Error, Server, serve, serve_streaming};
