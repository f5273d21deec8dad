//! The loop over scripted clients on a virtual clock (see `testing`).

use crate::testing::{End, Stream, VirtualClock, run};
use crate::{Clock, Error, Limits, Request, Response, Server, serve};
use alloc::format;
use core::cell::Cell;
use core::time::Duration;
use embedded_io_async::ErrorKind;
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
}

/// Answers with the method, path and body length.
async fn echo(req: Request) -> Response {
    Response::text("200 OK", format!("{} {} {}", req.method, req.path, req.body.len()))
}

fn converse(limits: Limits, script: impl FnOnce(Stream) -> Stream) -> Outcome {
    let clock = VirtualClock::new();
    let server = Server::with_clock(limits, clock.clone());
    let stream = script(Stream::new(&clock));
    let received = stream.received();
    let handled = Cell::new(0);
    let result = run(
        &clock,
        serve(stream, &server, async |req| {
            handled.set(handled.get() + 1);
            echo(req).await
        }),
    );
    assert_eq!(server.budget().used(), 0, "the budget is paid back when the connection ends");
    Outcome {
        result,
        received: String::from_utf8(received.bytes()).unwrap(),
        handled: handled.get(),
        ended_at: clock.now(),
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
