//! The request head: what `httparse` found, checked.

use crate::headers::{Headers, MAX_HEADERS};
use alloc::string::String;

/// What the loop needs from a request head.
#[derive(Debug)]
pub(crate) struct Head {
    pub method: String,
    pub path: String,
    /// The minor version: `HTTP/1.0` or `HTTP/1.1`.
    pub version: u8,
    pub headers: Headers,
    pub keep_alive: bool,
    pub body_len: usize,
}

/// Parses a head at the start of `bytes`: `Ok(None)` when it is not
/// complete yet, else the head and its length; `Err` says why it is bad.
pub(crate) fn parse(bytes: &[u8]) -> Result<Option<(Head, usize)>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => check(&req).map(|head| Some((head, n))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(match e {
            httparse::Error::Token => "malformed request: invalid token",
            httparse::Error::HeaderName => "malformed request: invalid header name",
            httparse::Error::HeaderValue => "malformed request: invalid header value",
            httparse::Error::NewLine | httparse::Error::Status => "malformed request: invalid line",
            httparse::Error::TooManyHeaders => "malformed request: too many headers",
            _ => "malformed request",
        }),
    }
}

fn check(req: &httparse::Request<'_, '_>) -> Result<Head, &'static str> {
    let (method, path, version) =
        (req.method.ok_or("no method")?, req.path.ok_or("no path")?, req.version.ok_or("no version")?);
    let headers = Headers::from_parsed(req.headers);
    // HTTP/1.1 keeps connections alive unless told not to, HTTP/1.0 only
    // when asked to.
    let keep_alive = if version == 1 {
        !headers.has_token("connection", "close")
    } else {
        headers.has_token("connection", "keep-alive")
    };
    if headers.get_bytes("transfer-encoding").is_some() {
        return Err("chunked request bodies are not supported");
    }
    // Two lengths (even equal ones) are how requests get smuggled past proxies.
    let body_len = {
        let mut lengths = headers.get_all("content-length");
        match (lengths.next(), lengths.next()) {
            (None, _) => 0,
            (Some(value), None) => content_length(value).ok_or("bad Content-Length")?,
            (Some(_), Some(_)) => return Err("more than one Content-Length"),
        }
    };
    Ok(Head { method: method.into(), path: path.into(), version, headers, keep_alive, body_len })
}

/// Decimal digits only (no sign), optionally surrounded by blanks.
fn content_length(value: &[u8]) -> Option<usize> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(digits).ok()?.parse().ok()
}
