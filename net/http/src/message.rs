//! Requests as handlers see them, and their responses.

use crate::budget::Reservation;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

/// A request, body included.
#[derive(Debug)]
pub struct Request {
    /// The method as sent, such as `GET`.
    pub method: String,
    /// The request target as sent: path and query.
    pub path: String,
    /// The body, as long as its `Content-Length` said.
    pub body: Vec<u8>,
}

/// A response; its body is sent with a `Content-Length`.
#[derive(Debug)]
pub struct Response {
    /// Code and reason of the status line, such as `200 OK`.
    pub status: &'static str,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body sent.
    pub body: Vec<u8>,
    /// `Retry-After` in seconds.
    retry_after: Option<u32>,
    /// Budget the handler reserved for the body before it built it.
    reservation: Option<Reservation>,
}

impl Response {
    /// A response with this status line, content type and body.
    pub fn new(status: &'static str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self { status, content_type, body: body.into(), retry_after: None, reservation: None }
    }

    /// A `text/plain` response.
    pub fn text(status: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "text/plain", body)
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

    /// The status line and headers.
    pub(crate) fn head(&self, keep_alive: bool) -> String {
        let mut head = String::new();
        // Writing to a String cannot fail.
        let _ = write!(
            head,
            "HTTP/1.1 {}\r\nServer: unikernel\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        if let Some(seconds) = self.retry_after {
            let _ = write!(head, "Retry-After: {seconds}\r\n");
        }
        let _ = write!(head, "Connection: {}\r\n\r\n", if keep_alive { "keep-alive" } else { "close" });
        head
    }
}
