//! The loop over scripted clients on a virtual clock (see `testing`).

use crate::testing::{End, Stream, VirtualClock, run};
use crate::{Clock, Error, Limits, Request, Response, Router, Server, serve, serve_streaming};
use alloc::format;
use core::cell::Cell;
use core::time::Duration;
use embedded_io_async::ErrorKind;
use futures_util::StreamExt;
use futures_util::future::join;
use std::alloc::{GlobalAlloc, Layout, System};

const SECOND: Duration = Duration::from_secs(1);

fn limits() -> Limits {
    Limits { max_body: 1 << 20, memory_budget: 4 << 20, ..Limits::default() }
}

/// A conversation's outcome: what `serve` returned, what the client got,
/// how often the handler ran and when the loop ended.
struct Outcome {
    result: Result<(), Error<ErrorKind>>,
    received: String,
    handled: usize,
    ended_at: Duration,
    /// Writes that took bytes.
    writes: usize,
}

/// Answers with the method, path and body length.
async fn echo(req: Request) -> Response {
    Response::text("200 OK", format!("{} {} {}", req.method, req.path, req.body.len()))
}

fn converse(limits: Limits, script: impl FnOnce(Stream) -> Stream) -> Outcome {
    conversation(limits, script, Serve::Buffered, echo)
}

/// Which serving loop a conversation runs.
enum Serve {
    Buffered,
    Streaming,
}

/// Runs `handler` under `how` against the scripted client, and checks the
/// budget is whole again at the end.
fn conversation(
    limits: Limits,
    script: impl FnOnce(Stream) -> Stream,
    how: Serve,
    handler: impl AsyncFn(Request) -> Response,
) -> Outcome {
    let clock = VirtualClock::new();
    let server = Server::with_clock(limits, clock.clone());
    let stream = script(Stream::new(&clock));
    let received = stream.received();
    let handled = Cell::new(0);
    let counted = async |req| {
        handled.set(handled.get() + 1);
        handler(req).await
    };
    let result = run(&clock, async {
        match how {
            Serve::Buffered => serve(stream, &server, counted).await,
            Serve::Streaming => serve_streaming(stream, &server, counted).await,
        }
    });
    assert_eq!(server.budget().used(), 0, "the budget is paid back when the connection ends");
    Outcome {
        result,
        received: String::from_utf8(received.bytes()).unwrap(),
        handled: handled.get(),
        ended_at: clock.now(),
        writes: received.writes(),
    }
}

#[test]
fn serves_pipelined_keep_alive_requests_then_closes_when_asked() {
    let out = converse(limits(), |s| {
        s.send_at(Duration::ZERO, b"PUT /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcHEAD /b HTTP/1.1\r\n\r\n")
            .send_at(SECOND, b"GET /c HTTP/1.1\r\nConnection: close\r\n\r\n")
            .write_chunk(7)
    });
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.handled, 3);
    let expected = [
        "HTTP/1.1 200 OK\r\nServer: unikernel\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: keep-alive\r\n\r\nPUT /a 3",
        // "HEAD /b 0" is not sent, its length is.
        "HTTP/1.1 200 OK\r\nServer: unikernel\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: keep-alive\r\n\r\n",
        "HTTP/1.1 200 OK\r\nServer: unikernel\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: close\r\n\r\nGET /c 0",
    ];
    assert_eq!(out.received, expected.concat());
}

#[test]
fn each_small_response_leaves_in_one_write_so_one_tls_record() {
    let out = converse(limits(), |s| {
        s.send_at(Duration::ZERO, b"GET /a HTTP/1.1\r\n\r\n").send_at(SECOND, b"GET /b HTTP/1.1\r\n\r\n")
    });
    assert_eq!(out.handled, 2);
    assert_eq!(out.writes, 2, "head and body joined, per response: {:?}", out.received);
    // A chunk's size line, data and CRLF go in one write too: the head,
    // three chunks and the last chunk.
    let out = converse_streaming(
        limits(),
        |s| s.send_at(Duration::ZERO, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
        async |_| Response::stream("200 OK", "text/plain", chunks(3, 10)),
    );
    assert_eq!(bodies(&out.received), [(expected_chunks(3, 10), true)]);
    assert_eq!(out.writes, 5, "{:?}", out.received);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_quietly_after_the_idle_timeout() {
    let out = converse(limits(), |s| s.send_at(Duration::ZERO, b"GET / HTTP/1.1\r\n\r\n"));
    assert_eq!((out.result, out.handled), (Ok(()), 1));
    assert_eq!(out.ended_at, limits().idle_timeout);
}

#[test]
fn a_head_dripped_under_the_idle_timeout_ends_at_the_head_deadline_with_408() {
    // One byte every 9 s: each read is within the 10 s idle timeout, the
    // whole head (6 minutes of drip) is not within its 10 s deadline.
    let head = b"GET / HTTP/1.1\r\nHost: slow.example\r\n\r\n";
    let out = converse(limits(), |s| s.drip(SECOND, 9 * SECOND, head));
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.handled, 0, "the dripped head never reaches the handler");
    assert!(out.received.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{}", out.received);
    assert_eq!(out.ended_at, SECOND + limits().head_timeout);
}

#[test]
fn a_body_dripped_under_the_idle_timeout_ends_at_the_body_deadline_with_408() {
    let l = limits();
    let out = converse(l, |s| {
        s.send_at(Duration::ZERO, b"PUT /k HTTP/1.1\r\nContent-Length: 100\r\n\r\n").drip(
            SECOND,
            9 * SECOND,
            &[b'x'; 100],
        )
    });
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.handled, 0);
    assert!(out.received.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{}", out.received);
    assert_eq!(out.ended_at, l.body_timeout + l.transfer_time(100));
}

#[test]
fn a_client_that_stops_reading_is_dropped_at_the_write_deadline() {
    let l = limits();
    let out = converse(l, |s| s.send_at(Duration::ZERO, b"GET / HTTP/1.1\r\n\r\n").reads(10));
    assert_eq!(out.result, Err(Error::TimedOut));
    assert_eq!(out.received.len(), 10);
    let response_len = Response::text("200 OK", "GET / 0").head(true).len() + "GET / 0".len();
    assert_eq!(out.ended_at, l.write_timeout + l.transfer_time(response_len));
}

thread_local! {
    /// Bytes this thread has allocated and not freed, and the most at once.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// Counts each test thread's live heap bytes.
struct Counting;

// SAFETY: defers to the system allocator; the counters are thread-local
// `Cell`s with const initializers, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + delta);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

#[global_allocator]
static COUNTING: Counting = Counting;

#[test]
fn an_announced_body_that_never_comes_costs_budget_not_memory() {
    let before = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let out = converse(limits(), |s| {
        s.send_at(Duration::ZERO, b"PUT /k HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n").then(End::Hang)
    });
    assert!(out.received.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{}", out.received);
    let peak = PEAK.with(Cell::get) - before;
    assert!(peak < 64 * 1024, "{peak} bytes allocated for a body that never came");
}

#[test]
fn bodies_over_the_budget_get_503_and_the_budget_is_paid_back() {
    let clock = VirtualClock::new();
    let limits = Limits { memory_budget: 1000, ..limits() };
    let server = Server::with_clock(limits, clock.clone());
    // The first client announces 800 bytes and sends them over 5 s; the
    // second announces 800 meanwhile; the third comes after the first.
    let first = Stream::new(&clock)
        .send_at(Duration::ZERO, b"PUT /1 HTTP/1.1\r\nContent-Length: 800\r\n\r\n")
        .send_at(5 * SECOND, &[b'x'; 800])
        .then(End::Close);
    let second = Stream::new(&clock).send_at(SECOND, b"PUT /2 HTTP/1.1\r\nContent-Length: 800\r\n\r\n");
    let third = Stream::new(&clock)
        .send_at(6 * SECOND, b"PUT /3 HTTP/1.1\r\nContent-Length: 800\r\n\r\n")
        .send_at(6 * SECOND, &[b'y'; 800])
        .then(End::Close);
    let replies = [first.received(), second.received(), third.received()];
    let results =
        run(&clock, join(join(serve(first, &server, echo), serve(second, &server, echo)), serve(third, &server, echo)));
    assert_eq!(results, ((Ok(()), Ok(())), Ok(())));
    let [first, second, third] = replies.map(|r| String::from_utf8(r.bytes()).unwrap());
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n") && first.ends_with("PUT /1 800"), "{first}");
    assert!(second.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{second}");
    assert!(second.contains("\r\nRetry-After: 1\r\n") && second.contains("\r\nConnection: close\r\n"), "{second}");
    assert!(third.starts_with("HTTP/1.1 200 OK\r\n") && third.ends_with("PUT /3 800"), "{third}");
    assert_eq!(server.budget().used(), 0);
}

#[test]
fn response_bodies_hold_budget_until_sent_and_get_503_when_it_runs_out() {
    let clock = VirtualClock::new();
    let server = Server::with_clock(Limits { memory_budget: 1000, ..limits() }, clock.clone());
    // A handler that reserves before it builds 600 bytes; two slow readers.
    let big = async |_req: Request| match server.budget().reserve(600) {
        Some(reservation) => Response::text("200 OK", [b'v'; 600]).with_reservation(reservation),
        None => Response::unavailable(),
    };
    let reader = |at| Stream::new(&clock).send_at(at, b"GET /big HTTP/1.1\r\n\r\n").reads(200).then(End::Close);
    let (slow, late) = (reader(Duration::ZERO), reader(SECOND));
    let replies = [slow.received(), late.received()];
    let probe = async {
        clock.sleep_until(2 * SECOND).await;
        server.budget().used()
    };
    let ((slow, late), held) = run(&clock, join(join(serve(slow, &server, big), serve(late, &server, big)), probe));
    assert_eq!(held, 600, "the stalled response holds its body's budget");
    assert_eq!((slow, late), (Err(Error::TimedOut), Ok(())));
    let [_, late] = replies.map(|r| String::from_utf8(r.bytes()).unwrap());
    assert!(late.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{late}");
    assert_eq!(server.budget().used(), 0);

    // Without a reservation from the handler the loop reserves the body.
    let out = converse(Limits { memory_budget: 100, ..limits() }, |s| {
        s.send_at(Duration::ZERO, b"GET /a-long-path-makes-a-long-echo HTTP/1.1\r\n\r\n")
    });
    assert!(out.received.starts_with("HTTP/1.1 200 OK\r\n"), "{}", out.received);
    let out = converse(Limits { memory_budget: 10, ..limits() }, |s| {
        s.send_at(Duration::ZERO, b"GET /a-long-path-makes-a-long-echo HTTP/1.1\r\n\r\n")
    });
    assert!(out.received.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{}", out.received);
}

#[test]
fn oversized_bodies_get_413_and_bad_heads_400() {
    let refused = |request: &[u8]| {
        let out = converse(Limits { max_head: 1024, max_body: 100, ..limits() }, |s| {
            s.send_at(Duration::ZERO, request).then(End::Close)
        });
        assert_eq!((out.result, out.handled), (Ok(()), 0));
        assert!(out.received.contains("\r\nConnection: close\r\n"), "{}", out.received);
        out.received.split("\r\n").next().unwrap().to_owned()
    };
    assert_eq!(refused(b"PUT / HTTP/1.1\r\nContent-Length: 101\r\n\r\n"), "HTTP/1.1 413 Content Too Large");
    assert_eq!(
        refused(b"PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
        "HTTP/1.1 400 Bad Request"
    );
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(2000)).as_bytes(),
    ] {
        assert_eq!(refused(bad), "HTTP/1.1 400 Bad Request", "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn a_reset_or_a_close_mid_request_ends_the_loop() {
    let reset = converse(limits(), |s| s.send_at(Duration::ZERO, b"GET / HTT").then(End::Reset));
    assert_eq!(reset.result, Err(Error::Io(ErrorKind::ConnectionReset)));
    let closed = converse(limits(), |s| {
        s.send_at(Duration::ZERO, b"PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").then(End::Close)
    });
    assert_eq!((closed.result, closed.handled, closed.received.as_str()), (Ok(()), 0, ""));
}

/// Runs `handler` under [`serve_streaming`] against the scripted client.
fn converse_streaming(
    limits: Limits,
    script: impl FnOnce(Stream) -> Stream,
    handler: impl AsyncFn(Request) -> Response,
) -> Outcome {
    conversation(limits, script, Serve::Streaming, handler)
}

/// The bodies of the responses in `received`, in order (`Content-Length`
/// or chunked), and whether each asked to close.
fn bodies(mut received: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    while let Some((head, rest)) = received.split_once("\r\n\r\n") {
        let header = |name: &str| {
            head.split("\r\n").find_map(|line| line.split_once(": ").filter(|(n, _)| n.eq_ignore_ascii_case(name)))
        };
        let close = header("connection").map(|(_, v)| v) == Some("close");
        let (body, tail) = if let Some((_, length)) = header("content-length") {
            rest.split_at(length.parse::<usize>().unwrap().min(rest.len()))
        } else if header("transfer-encoding").is_some() {
            let (mut body, mut tail) = (String::new(), rest);
            loop {
                let (size, after) = tail.split_once("\r\n").expect("chunk size line");
                let size = usize::from_str_radix(size, 16).expect("hex chunk size");
                body.push_str(&after[..size]);
                assert_eq!(&after[size..size + 2], "\r\n", "chunk end");
                tail = &after[size + 2..];
                if size == 0 {
                    break;
                }
            }
            (&*body.leak(), tail)
        } else {
            (rest, "")
        };
        out.push((body.to_owned(), close));
        received = tail;
    }
    out
}

#[test]
fn handlers_see_the_headers_query_and_method() {
    let out = converse_streaming(
        limits(),
        |s| {
            s.send_at(Duration::ZERO, b"GET /p?a=1&b=x%20y&c HTTP/1.1\r\nX-Name: one\r\nx-name: two\r\nHost: h\r\n\r\n")
                .then(End::Close)
        },
        async |req| {
            let seen = format!(
                "{} {} {:?} {:?} {:?} {:?} {:?} {:?} {}",
                req.method,
                req.uri_path(),
                req.header("X-NAME"),
                req.headers.get_all("x-name").collect::<Vec<_>>(),
                req.query_param("b"),
                req.query_param("c"),
                req.query_param("d"),
                req.header("absent"),
                req.headers.len(),
            );
            Response::text("200 OK", seen)
        },
    );
    let [(body, _)] = &bodies(&out.received)[..] else { panic!("{}", out.received) };
    assert_eq!(body, r#"GET /p Some("one") [[111, 110, 101], [116, 119, 111]] Some("x%20y") Some("") None None 3"#);
}

#[test]
fn more_than_max_headers_headers_get_400() {
    let many: String = (0..=crate::MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
    let out = converse(limits(), |s| s.send_at(Duration::ZERO, format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()));
    assert!(out.received.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{}", out.received);
    assert_eq!(out.handled, 0);
}

/// A router over a little key-value map, as `examples/kv.rs` has.
fn kv_router<'a>() -> Router<'a> {
    Router::new()
        .get("/", async |_| Response::text("200 OK", "index"))
        .get("/kv/{key}", async |req| Response::text("200 OK", format!("get {}", req.param("key").unwrap())))
        .put("/kv/{key}", async |req| {
            Response::text("200 OK", format!("put {} {}", req.param("key").unwrap(), req.body.len()))
        })
        .delete("/kv/{key}", async |req| Response::text("200 OK", format!("delete {}", req.param("key").unwrap())))
        .get("/files/{*path}", async |req| Response::text("200 OK", format!("file {}", req.param("path").unwrap())))
}

#[test]
fn the_router_routes_by_method_and_pattern_with_404_and_405_with_allow() {
    let router = kv_router();
    let exchange = |raw: &[u8]| {
        converse_streaming(
            limits(),
            |s| s.send_at(Duration::ZERO, raw).then(End::Close),
            async |req| router.handle(req).await,
        )
        .received
    };
    let status = |received: &str| received.split("\r\n").next().unwrap().to_owned();
    let body = |received: &str| bodies(received).remove(0).0;
    assert_eq!(body(&exchange(b"GET / HTTP/1.1\r\n\r\n")), "index");
    assert_eq!(body(&exchange(b"GET /kv/a%2Fb?x=1 HTTP/1.1\r\n\r\n")), "get a%2Fb");
    assert_eq!(body(&exchange(b"PUT /kv/k HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")), "put k 3");
    assert_eq!(body(&exchange(b"DELETE /kv/k HTTP/1.1\r\n\r\n")), "delete k");
    assert_eq!(body(&exchange(b"GET /files/a/b.txt HTTP/1.1\r\n\r\n")), "file a/b.txt");
    let head = exchange(b"HEAD /kv/k HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("Content-Length: 5\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD gets no body: {head}");
    for missing in [&b"GET /nope HTTP/1.1\r\n\r\n"[..], b"GET /kv/ HTTP/1.1\r\n\r\n", b"GET /kv/a/b HTTP/1.1\r\n\r\n"] {
        assert_eq!(status(&exchange(missing)), "HTTP/1.1 404 Not Found");
    }
    let refused = exchange(b"POST /kv/k HTTP/1.1\r\n\r\n");
    assert_eq!(status(&refused), "HTTP/1.1 405 Method Not Allowed");
    assert!(refused.contains("\r\nAllow: GET, HEAD, PUT, DELETE\r\n"), "{refused}");
    // Route bodies are buffered under the server's limits.
    let big = exchange(b"PUT /kv/k HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n");
    assert_eq!(status(&big), "HTTP/1.1 413 Content Too Large");
}

/// `n` chunks of `size` bytes, made only when the server asks for them.
fn chunks(n: usize, size: usize) -> impl futures_util::Stream<Item = Vec<u8>> {
    futures_util::stream::iter(0..n).map(move |i| vec![b'a' + (i % 26) as u8; size])
}

fn expected_chunks(n: usize, size: usize) -> String {
    (0..n).map(|i| char::from(b'a' + (i % 26) as u8).to_string().repeat(size)).collect()
}

#[test]
fn a_streamed_response_larger_than_the_budget_is_sent_in_chunks() {
    // 100 KB through a 1000-byte budget, then the connection serves on.
    let l = Limits { memory_budget: 1000, ..limits() };
    let out = converse_streaming(
        l,
        |s| {
            s.send_at(Duration::ZERO, b"GET /big HTTP/1.1\r\n\r\nGET /small HTTP/1.1\r\nConnection: close\r\n\r\n")
                .write_chunk(999)
        },
        async |req| match req.path.as_str() {
            "/big" => Response::stream("200 OK", "text/plain", chunks(200, 500)),
            _ => Response::text("200 OK", "small"),
        },
    );
    assert_eq!(out.result, Ok(()));
    assert!(out.received.contains("\r\nTransfer-Encoding: chunked\r\n"), "{}", &out.received[..200]);
    assert_eq!(bodies(&out.received), [(expected_chunks(200, 500), false), ("small".into(), true)]);
    // A chunk is paid for while it is written: one larger than the whole
    // budget cuts the body (no last chunk) and ends the connection.
    let out = converse_streaming(
        l,
        |s| s.send_at(Duration::ZERO, b"GET /huge HTTP/1.1\r\n\r\nGET /small HTTP/1.1\r\n\r\n"),
        async |_| Response::stream("200 OK", "text/plain", chunks(3, 600).chain(chunks(1, 1001))),
    );
    assert_eq!((out.result, out.handled), (Ok(()), 1));
    assert!(out.received.ends_with(&format!("\r\n258\r\n{}\r\n", "c".repeat(600))), "{}", out.received);
}

#[test]
fn a_streamed_response_with_a_length_is_sent_as_is_and_a_short_one_closes() {
    let respond = |length| {
        converse_streaming(
            limits(),
            |s| s.send_at(Duration::ZERO, b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n").then(End::Close),
            async |_| Response::stream("200 OK", "text/plain", chunks(3, 10)).with_length(length),
        )
    };
    let exact = respond(30);
    assert!(exact.received.contains("\r\nContent-Length: 30\r\n"), "{}", exact.received);
    assert_eq!(bodies(&exact.received), [(expected_chunks(3, 10), false), (expected_chunks(3, 10), false)]);
    // Promised 40, had 30: the client sees the cut (the connection ends).
    let short = respond(40);
    assert_eq!((short.handled, short.received.matches("HTTP/1.1 200").count()), (1, 1), "{}", short.received);
    // Promised 25: exactly 25 are sent (the rest of the source is dropped).
    let long = respond(25);
    let first = expected_chunks(3, 10)[..25].to_owned();
    assert_eq!(bodies(&long.received), [(first.clone(), false), (first, false)]);
}

#[test]
fn a_client_that_stops_reading_a_stream_is_dropped_at_a_chunk_deadline() {
    let l = limits();
    let out = converse_streaming(
        l,
        |s| s.send_at(Duration::ZERO, b"GET / HTTP/1.1\r\n\r\n").reads(3000),
        async |_| Response::stream("200 OK", "text/plain", chunks(usize::MAX, 1000)),
    );
    assert_eq!(out.result, Err(Error::TimedOut));
    assert_eq!(out.received.len(), 3000);
}

#[test]
fn http_1_0_gets_no_chunks_and_is_closed_unless_it_asks_for_keep_alive() {
    let out = converse_streaming(
        limits(),
        |s| s.send_at(Duration::ZERO, b"GET /s HTTP/1.0\r\n\r\nGET /ignored HTTP/1.0\r\n\r\n"),
        async |_| Response::stream("200 OK", "text/plain", chunks(2, 5)),
    );
    assert_eq!((out.result, out.handled), (Ok(()), 1));
    assert!(
        !out.received.contains("Transfer-Encoding") && !out.received.contains("Content-Length"),
        "{}",
        out.received
    );
    assert!(out.received.ends_with("\r\nConnection: close\r\n\r\naaaaabbbbb"), "{}", out.received);
    // Keep-alive on request; a close token among others ends it.
    let out = converse(limits(), |s| {
        s.send_at(
            Duration::ZERO,
            b"GET /1 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /2 HTTP/1.1\r\nConnection: foo, close\r\n\r\nGET /3 HTTP/1.1\r\n\r\n",
        )
    });
    assert_eq!((out.result, out.handled), (Ok(()), 2));
    assert_eq!(bodies(&out.received), [("GET /1 0".into(), false), ("GET /2 0".into(), true)]);
}

#[test]
fn pipelined_requests_in_one_packet_are_answered_in_order() {
    let out = converse(limits(), |s| {
        s.send_at(
            Duration::ZERO,
            b"GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nxyGET /3 HTTP/1.1\r\n\r\nGET /4 HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        .write_chunk(5)
    });
    assert_eq!((out.result, out.handled), (Ok(()), 4));
    let expected = [("GET /1 0", false), ("POST /2 2", false), ("GET /3 0", false), ("GET /4 0", true)];
    assert_eq!(bodies(&out.received), expected.map(|(b, c)| (b.to_owned(), c)));
}

#[test]
fn a_streaming_handler_reads_a_body_larger_than_max_body_and_the_budget_in_small_pieces() {
    let l = Limits { max_body: 100, memory_budget: 1000, ..limits() };
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut request = b"PUT /up HTTP/1.1\r\nContent-Length: 200000\r\n\r\n".to_vec();
    request.extend_from_slice(&body);
    request.extend_from_slice(b"GET /next HTTP/1.1\r\nConnection: close\r\n\r\n");
    let before = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let out = converse_streaming(
        l,
        |s| s.send_at(Duration::ZERO, &request[..50_000]).send_at(SECOND, &request[50_000..]),
        async |mut req| {
            let (mut sum, mut len, mut buf) = (0u64, 0, [0; 1000]);
            loop {
                match req.read_body(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => {
                        sum += buf[..n].iter().map(|&b| u64::from(b)).sum::<u64>();
                        len += n;
                    }
                    Err(e) => return Response::text("500 Internal Server Error", format!("{e}")),
                }
            }
            Response::text("200 OK", format!("{} {len} {sum}", req.path))
        },
    );
    let peak = PEAK.with(Cell::get) - before;
    let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
    assert_eq!(bodies(&out.received), [(format!("/up 200000 {sum}"), false), ("/next 0 0".into(), true)]);
    // The script itself holds the 200 KB request; the server adds little.
    assert!(peak < (request.len() + 64 * 1024) as isize, "{peak} bytes at the peak");
}

#[test]
fn a_body_the_handler_leaves_unread_ends_the_connection_after_the_response() {
    let out = converse_streaming(
        limits(),
        |s| s.send_at(Duration::ZERO, b"PUT /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n"),
        async |req| Response::text("200 OK", req.path),
    );
    assert_eq!((out.result, out.handled), (Ok(()), 1));
    assert_eq!(bodies(&out.received), [("/a".into(), true)]);
    // A streaming handler that buffers gets the body, and the next request.
    let out = converse_streaming(
        limits(),
        |s| s.send_at(Duration::ZERO, b"PUT /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n"),
        async |mut req| match req.buffer_body().await {
            Ok(()) => Response::text("200 OK", req.body),
            Err(refusal) => refusal,
        },
    );
    assert_eq!(out.handled, 2);
    assert_eq!(bodies(&out.received), [("hello".into(), false), ("".into(), false)]);
}

#[test]
fn connections_past_the_cap_get_503_until_one_ends() {
    let clock = VirtualClock::new();
    let server = Server::with_clock(Limits { max_connections: 2, ..limits() }, clock.clone());
    // Two clients hold their connections for 5 s; a third comes meanwhile,
    // a fourth after they left.
    let holder = |path: &str| {
        Stream::new(&clock)
            .send_at(Duration::ZERO, format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes())
            .send_at(5 * SECOND, b"GET /bye HTTP/1.1\r\nConnection: close\r\n\r\n")
    };
    let (first, second) = (holder("/1"), holder("/2"));
    let third = Stream::new(&clock).send_at(SECOND, b"GET /3 HTTP/1.1\r\n\r\n").then(End::Close);
    let fourth = Stream::new(&clock).send_at(6 * SECOND, b"GET /4 HTTP/1.1\r\nConnection: close\r\n\r\n");
    let replies = [first.received(), second.received(), third.received(), fourth.received()];
    let late = async {
        clock.sleep_until(SECOND).await;
        let third = serve(third, &server, echo).await;
        clock.sleep_until(6 * SECOND).await;
        (third, serve(fourth, &server, echo).await)
    };
    let results = run(&clock, join(join(serve(first, &server, echo), serve(second, &server, echo)), late));
    assert_eq!(results, ((Ok(()), Ok(())), (Ok(()), Ok(()))));
    let [first, _, third, fourth] = replies.map(|r| String::from_utf8(r.bytes()).unwrap());
    assert!(first.ends_with("GET /bye 0"), "{first}");
    assert!(third.starts_with("HTTP/1.1 503 Service Unavailable\r\n") && third.contains("Retry-After: 1"), "{third}");
    assert!(fourth.starts_with("HTTP/1.1 200 OK\r\n"), "{fourth}");
    assert_eq!(server.open_connections(), 0);
}

#[test]
fn response_headers_with_line_breaks_are_left_out() {
    let out = converse_streaming(
        limits(),
        |s| s.send_at(Duration::ZERO, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
        async |_| {
            Response::text("200 OK", "x").with_header("X-Ok", "fine").with_header("X-Bad", "a\r\nSet-Cookie: evil=1")
        },
    );
    assert!(out.received.contains("\r\nX-Ok: fine\r\n"), "{}", out.received);
    assert!(!out.received.contains("X-Bad") && !out.received.contains("evil"), "{}", out.received);
}
