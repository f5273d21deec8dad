//! The HTTP server loop (`unikernel-http`) over an in-memory connection on
//! a virtual clock: arbitrary request bytes, arbitrary chunking and stalls,
//! a client that may stop reading, and part of the memory budget already
//! held by "other connections".

use crate::Target;
use std::cell::RefCell;
use std::time::Duration;
use unikernel_http::testing::{End, Stream, VirtualClock, run};
use unikernel_http::{Budget, Clock, Limits, Request, Response, Server};

/// The fuzz targets of this module, by the names `fuzz/Cargo.toml` gives them.
pub const TARGETS: &[Target] = &[("http_serve", serve)];

/// Small sizes, so that every refusal is reachable; default deadlines.
fn limits() -> Limits {
    Limits { max_head: 512, max_body: 2048, memory_budget: 4096, ..Limits::default() }
}

/// Pauses a chunk can be preceded by: around every deadline.
const STALLS: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_millis(10),
    Duration::from_millis(500),
    Duration::from_secs(3),
    Duration::from_secs(9),
    Duration::from_secs(11),
    Duration::from_secs(30),
    Duration::from_secs(120),
];

/// What a fuzz input asks for.
struct Input<'a> {
    end: End,
    /// Budget held elsewhere while this connection runs.
    held: usize,
    /// Bytes the client reads before it stops reading.
    reads: usize,
    write_chunk: usize,
    /// One byte per chunk: its length (low 5 bits, plus 1) and the stall
    /// before it (high 3 bits).
    schedule: &'a [u8],
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    /// `[flags][write chunk][schedule length][schedule...][request bytes...]`;
    /// missing bytes read as zero. Flags: bits 0-1 how the client ends,
    /// 2-4 the budget held elsewhere (640-byte steps), 5-7 how much it reads.
    fn decode(data: &'a [u8]) -> Self {
        let byte = |i: usize| data.get(i).copied().unwrap_or(0);
        let (flags, write_chunk) = (byte(0), byte(1));
        let schedule_len = usize::from(byte(2)).min(data.len().saturating_sub(3));
        let (schedule, bytes) = data.get(3..).unwrap_or(&[]).split_at(schedule_len);
        Self {
            end: [End::Close, End::Hang, End::Reset, End::Close][usize::from(flags & 3)],
            held: usize::from(flags >> 2 & 7) * 640,
            reads: [usize::MAX, usize::MAX, usize::MAX, usize::MAX, usize::MAX, 0, 100, 1000][usize::from(flags >> 5)],
            write_chunk: if write_chunk == 0 { usize::MAX } else { usize::from(write_chunk) },
            schedule,
            bytes,
        }
    }

    /// The client, and when it sends its last byte.
    fn client(&self, clock: &VirtualClock) -> (Stream, Duration) {
        let mut stream = Stream::new(clock).then(self.end).reads(self.reads).write_chunk(self.write_chunk);
        let (mut at, mut rest) = (Duration::ZERO, self.bytes);
        for &step in self.schedule {
            if rest.is_empty() {
                break;
            }
            at += STALLS[usize::from(step >> 5)];
            let (chunk, tail) = rest.split_at(usize::from(step & 31).saturating_add(1).min(rest.len()));
            stream = stream.send_at(at, chunk);
            rest = tail;
        }
        if !rest.is_empty() {
            stream = stream.send_at(at, rest);
        }
        (stream, at)
    }
}

/// A request the handler answered, and the response the client must see.
struct Call {
    head_only: bool,
    status: &'static str,
    body: Vec<u8>,
}

/// `/read` reads the body in small pieces as it comes and answers with its
/// length; `/stream` streams its answer in chunks; anything else gets the
/// body buffered first (under the limits) and goes to [`answer`]. A body
/// that cannot be read is the loop's to refuse: no call is recorded.
async fn handle(mut req: Request, budget: &Budget, held: usize, calls: &RefCell<Vec<Call>>) -> Response {
    let head_only = req.method == "HEAD";
    if req.uri_path() == "/read" {
        let (mut len, mut buf) = (0, [0; 64]);
        loop {
            match req.read_body(&mut buf).await {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(_) => return Response::text("408 Request Timeout", "slow\n"),
            }
        }
        assert_eq!(len, req.content_length(), "read_body reads the whole body");
        let response = Response::text("200 OK", format!("read {len}"));
        calls.borrow_mut().push(Call { head_only, status: response.status, body: response.body.clone() });
        return response;
    }
    if let Err(refusal) = req.buffer_body().await {
        return refusal;
    }
    if req.uri_path() == "/stream" && held + STREAM_CHUNK <= budget.capacity() {
        // Each chunk is paid for while it is written, and fits.
        let body: Vec<u8> = (0..3 * STREAM_CHUNK).map(|i| b'a' + (i % 26) as u8).collect();
        let chunks: Vec<Vec<u8>> = body.chunks(STREAM_CHUNK).map(<[u8]>::to_vec).collect();
        calls.borrow_mut().push(Call { head_only, status: "200 OK", body: body.clone() });
        let stream = futures_util::stream::iter(chunks);
        return Response::stream("200 OK", "text/plain", stream).with_length(body.len() as u64);
    }
    answer(req, budget, held, calls)
}

/// Bytes of each chunk `/stream` sends.
const STREAM_CHUNK: usize = 100;

/// Echoes the request; `/big` answers more than the budget may hold;
/// `/reserve` reserves before it builds its body, as a careful handler does.
fn answer(req: Request, budget: &Budget, held: usize, calls: &RefCell<Vec<Call>>) -> Response {
    // The body's buffer is all paid for by the request's reservation.
    assert!(req.body.capacity() <= budget.used() - held, "a body buffer larger than its reservation");
    let head_only = req.method == "HEAD";
    let response = if req.path == "/big" {
        Response::text("200 OK", vec![b'b'; 2500])
    } else if req.path == "/reserve" {
        match budget.reserve(1000) {
            Some(reservation) => Response::text("200 OK", vec![b'r'; 500]).with_reservation(reservation),
            None => Response::unavailable(),
        }
    } else {
        let mut body = format!("{} {} ", req.method, req.path).into_bytes();
        body.extend_from_slice(&req.body);
        Response::text("200 OK", body)
    };
    // Without its own reservation a response fits iff its body does.
    let fits = req.path == "/reserve" || held + response.body.len() <= budget.capacity();
    let expected = if fits {
        (response.status, response.body.clone())
    } else {
        let busy = Response::unavailable();
        (busy.status, busy.body)
    };
    calls.borrow_mut().push(Call { head_only, status: expected.0, body: expected.1 });
    response
}

/// Drives the server loop with the decoded input; panics when a promise
/// breaks: a panic, a hang, a malformed response or one with a wrong
/// length, budget not paid back.
pub fn serve(data: &[u8]) {
    let input = Input::decode(data);
    let clock = VirtualClock::new();
    let limits = limits();
    let server = Server::with_clock(limits, clock.clone());
    let elsewhere = server.budget().reserve(input.held.min(limits.memory_budget));
    let held = elsewhere.as_ref().map_or(0, |r| r.bytes());
    let (stream, last_send) = input.client(&clock);
    let received = stream.received();
    let calls = RefCell::new(Vec::new());
    let budget = server.budget().clone();
    // `run` panics if the loop would wait forever.
    let _ = run(
        &clock,
        unikernel_http::serve_streaming(stream, &server, async |req| handle(req, &budget, held, &calls).await),
    );
    assert_eq!(server.budget().used(), held, "the connection's budget is paid back");
    // After the client's last byte the loop may still wait for one head
    // (idle or head deadline) or one body, write one response and close;
    // bodies and responses here take under a second each at `min_rate`.
    let most = limits.idle_timeout
        + limits.head_timeout
        + limits.body_timeout
        + limits.write_timeout * 2
        + Duration::from_secs(2);
    assert!(clock.now() <= last_send + most, "the loop ran {:?} past the last byte", clock.now() - last_send);
    check_responses(&received.bytes(), &calls.into_inner(), input.reads == usize::MAX);
}

/// Every response is well-formed HTTP/1.1 with a correct `Content-Length`;
/// the first ones answer the handler's calls in order, one more may be a
/// refusal, and nothing follows a `Connection: close`.
fn check_responses(mut out: &[u8], calls: &[Call], read_all: bool) {
    let mut index = 0;
    while !out.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(out) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if !read_all => return, // the client stopped reading
            other => panic!("malformed response {index}: {other:?} in {:?}", String::from_utf8_lossy(out)),
        };
        assert_eq!(response.version, Some(1), "HTTP/1.1");
        let status = format!("{} {}", response.code.unwrap(), response.reason.unwrap());
        let header = |name: &str| {
            let mut values = response.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name));
            let value = values.next().map(|h| std::str::from_utf8(h.value).unwrap());
            assert!(values.next().is_none(), "{name} twice");
            value
        };
        let length: usize = header("content-length").expect("Content-Length").parse().unwrap();
        let close = match header("connection") {
            Some("close") => true,
            Some("keep-alive") => false,
            other => panic!("Connection: {other:?}"),
        };
        assert_eq!(header("retry-after").is_some(), status.starts_with("503"), "Retry-After with 503 only");
        let (sent, body) = match calls.get(index) {
            Some(call) => {
                assert_eq!((status.as_str(), length), (call.status, call.body.len()), "response {index}");
                (if call.head_only { 0 } else { length }, Some(&call.body))
            }
            None => {
                assert!(close, "a refusal closes the connection: {status}");
                let refusals =
                    ["400 Bad Request", "408 Request Timeout", "413 Content Too Large", "503 Service Unavailable"];
                assert!(refusals.contains(&status.as_str()), "refused with {status}");
                // A refusal of a `HEAD` request has no body; it is the last
                // response either way.
                (if out.len() == head_len { 0 } else { length }, None)
            }
        };
        let Some(rest) = out.get(head_len + sent..) else {
            assert!(!read_all, "response {index} truncated");
            return;
        };
        if let Some(expected) = body.filter(|_| sent > 0) {
            assert_eq!(&out[head_len..head_len + sent], &expected[..], "body of response {index}");
        }
        out = rest;
        index += 1;
        assert!(!close || out.is_empty(), "bytes after Connection: close");
    }
    assert!(index >= calls.len() || !read_all, "{} calls, {index} responses", calls.len());
}
