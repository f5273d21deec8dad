//! A small HTTP/1.1 server loop shared by the examples: `httparse` for the
//! request head, `Content-Length` bodies, keep-alive, `400` for what does
//! not parse, and a 10 s limit on idle clients and on clients that stop
//! reading.

use alloc::string::String;
use alloc::vec::Vec;
use alloc::{format, vec};
use unikernel::prelude::*;
use unikernel_net::{NetError, TcpStream};

/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 8 * 1024;
/// A keep-alive connection idle this long, or a client that stops reading
/// for this long, is dropped.
const IDLE: Duration = Duration::from_secs(10);

pub struct Request {
    pub method: String,
    pub path: String,
    #[allow(dead_code)] // not every example reads bodies
    pub body: Vec<u8>,
}

pub struct Response {
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: &'static str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self { status, content_type, body: body.into() }
    }

    pub fn text(status: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "text/plain", body)
    }
}

/// What the head said, besides method and path.
struct Head {
    method: String,
    path: String,
    keep_alive: bool,
    body_len: usize,
}

fn head(req: &httparse::Request<'_, '_>) -> Result<Head, &'static str> {
    let (method, path, version) =
        (req.method.ok_or("no method")?, req.path.ok_or("no path")?, req.version.ok_or("no version")?);
    let header = |name: &str| req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let connection = header("connection").and_then(|v| core::str::from_utf8(v).ok()).unwrap_or("");
    let keep_alive = if version == 1 {
        !connection.eq_ignore_ascii_case("close")
    } else {
        connection.eq_ignore_ascii_case("keep-alive")
    };
    if header("transfer-encoding").is_some() {
        return Err("chunked request bodies are not supported");
    }
    let body_len = match header("content-length") {
        None => 0,
        Some(v) => core::str::from_utf8(v).ok().and_then(|v| v.trim().parse().ok()).ok_or("bad Content-Length")?,
    };
    Ok(Head { method: method.into(), path: path.into(), keep_alive, body_len })
}

/// Serves requests on `conn` with `handler` until the client closes, errs
/// or idles; bodies over `max_body` bytes get `413`.
pub async fn serve(
    mut conn: TcpStream,
    max_body: usize,
    handler: impl AsyncFn(Request) -> Response,
) -> Result<(), NetError> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut filled = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let parsed = match req.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(n)) => head(&req).map(|h| (h, n)),
            Ok(httparse::Status::Partial) if filled < buf.len() => {
                match timeout(IDLE, conn.read(&mut buf[filled..])).await {
                    Ok(Ok(0)) | Err(_) => return Ok(()), // closed, or idle too long
                    Ok(Ok(n)) => filled += n,
                    Ok(Err(e)) => return Err(e),
                }
                continue;
            }
            Ok(httparse::Status::Partial) => Err("request head too large"),
            Err(e) => Err(match e {
                httparse::Error::Token => "malformed request: invalid token",
                httparse::Error::HeaderName => "malformed request: invalid header name",
                httparse::Error::HeaderValue => "malformed request: invalid header value",
                httparse::Error::NewLine | httparse::Error::Status => "malformed request: invalid line",
                _ => "malformed request",
            }),
        };
        let (head, consumed) = match parsed {
            Ok(parsed) => parsed,
            Err(why) => {
                respond(&mut conn, &Response::text("400 Bad Request", format!("{why}\n")), false, false).await?;
                return close(conn).await;
            }
        };
        if head.body_len > max_body {
            respond(&mut conn, &Response::text("413 Content Too Large", "body too large\n"), false, false).await?;
            return close(conn).await;
        }
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        let body = read_body(&mut conn, &mut buf, &mut filled, head.body_len).await?;
        let head_only = head.method == "HEAD";
        let response = handler(Request { method: head.method, path: head.path, body }).await;
        respond(&mut conn, &response, head_only, head.keep_alive).await?;
        if !head.keep_alive {
            return close(conn).await;
        }
    }
}

/// Sends FIN and lets the client read the response before the socket goes.
async fn close(mut conn: TcpStream) -> Result<(), NetError> {
    conn.close();
    let _ = timeout(IDLE, conn.flush()).await;
    Ok(())
}

async fn respond(conn: &mut TcpStream, r: &Response, head_only: bool, keep_alive: bool) -> Result<(), NetError> {
    let head = format!(
        "HTTP/1.1 {}\r\nServer: unikernel\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        r.status,
        r.content_type,
        r.body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    let body: &[u8] = if head_only { &[] } else { &r.body };
    // A client that stops reading gets IDLE to make room, then is dropped.
    let write = async {
        conn.write_all(head.as_bytes()).await?;
        conn.write_all(body).await
    };
    timeout(IDLE, write).await.unwrap_or(Err(NetError::ConnectionReset))
}

/// Reads a `len`-byte body, some of which may already be in `buf`.
async fn read_body(conn: &mut TcpStream, buf: &mut [u8], filled: &mut usize, len: usize) -> Result<Vec<u8>, NetError> {
    let buffered = len.min(*filled);
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(&buf[..buffered]);
    buf.copy_within(buffered..*filled, 0);
    *filled -= buffered;
    while body.len() < len {
        let want = (len - body.len()).min(buf.len());
        let n = timeout(IDLE, conn.read(&mut buf[..want])).await.unwrap_or(Ok(0))?;
        if n == 0 {
            return Err(NetError::ConnectionReset);
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok(body)
}
