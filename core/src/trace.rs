//! Tracing: what the runtime and the stacks did, when, as fixed-size
//! binary events in a ring buffer, streamed to the host channel
//! ([`crate::channel`]) whenever the executor is about to idle and at
//! exit; the runner turns them into a trace Perfetto opens (`--trace FILE`).
//!
//! Built only with the `trace` cargo feature (`cargo run --features
//! trace`; a crate depending on `unikernel` enables `unikernel/trace`).
//! Without it the instrumentation points ([`trace_event!`](crate::trace_event),
//! [`trace_span!`](crate::trace_span), [`if_tracing!`](crate::if_tracing))
//! expand to nothing: not a byte, not an instruction. With it, recording
//! an event is a timestamp and a copy under a critical section, so it may
//! come from an interrupt handler; a full ring drops the newest events and
//! says how many.
//!
//! This module's event layout is always built: the runner decodes with it.

/// What an event records. `a` and `b` are its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Kind {
    /// A task was spawned: `a` its slot.
    Spawn = 1,
    /// A task's poll began: `a` its slot ([`MAIN`] for `main`).
    PollStart = 2,
    /// A task's poll ended: `a` its slot, `b` 1 when the task finished.
    PollEnd = 3,
    /// A task was woken: `a` its slot.
    Wake = 4,
    /// A device interrupt on line `a` began.
    InterruptStart = 5,
    /// The interrupt on line `a` was handled.
    InterruptEnd = 6,
    /// `a` timers fired.
    Timers = 7,
    /// The executor halts until an interrupt or its next timer.
    IdleStart = 8,
    /// The executor woke up.
    IdleEnd = 9,
    /// A TCP connection changed state: `a` the local port, `b` the remote
    /// port << 16 | the old state << 8 | the new one (smoltcp's `State`
    /// order: Closed, Listen, SynSent, SynReceived, Established, FinWait1,
    /// FinWait2, CloseWait, Closing, LastAck, TimeWait).
    TcpState = 10,
    /// A block request was submitted: `a` its operation (0 read, 1 write,
    /// 2 flush), `b` its first sector.
    BlockStart = 11,
    /// The block request at sector `b` completed: `a` 0 on success, 1 on
    /// failure.
    BlockEnd = 12,
    /// A span of the application's began: `b` the address of its
    /// `&'static str` name in the image, `a` its length.
    SpanStart = 13,
    /// The span named as in [`Kind::SpanStart`] ended.
    SpanEnd = 14,
    /// The ring was full: `a` events were dropped before this one.
    Dropped = 15,
    /// Events were sent to the host from time `b` until this one: the
    /// tracer's own cost.
    Flushed = 16,
}

/// The slot [`Kind::PollStart`] names for `main`.
pub const MAIN: u32 = u32::MAX;
/// Bytes per encoded event.
pub const SIZE: usize = 24;

/// One event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Nanoseconds since boot ([`crate::time::Instant`]).
    pub time: u64,
    /// What happened: a [`Kind`], or one this code does not know.
    pub kind: u16,
    /// First argument (see [`Kind`]).
    pub a: u32,
    /// Second argument (see [`Kind`]).
    pub b: u64,
}

impl Kind {
    const ALL: [Kind; 16] = [
        Kind::Spawn,
        Kind::PollStart,
        Kind::PollEnd,
        Kind::Wake,
        Kind::InterruptStart,
        Kind::InterruptEnd,
        Kind::Timers,
        Kind::IdleStart,
        Kind::IdleEnd,
        Kind::TcpState,
        Kind::BlockStart,
        Kind::BlockEnd,
        Kind::SpanStart,
        Kind::SpanEnd,
        Kind::Dropped,
        Kind::Flushed,
    ];
}

impl Event {
    /// What happened; `None` for a kind this code does not know.
    pub fn kind(&self) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u16 == self.kind)
    }

    /// Little-endian: time (8), kind (2), 2 zero bytes, a (4), b (8).
    pub fn encode(&self) -> [u8; SIZE] {
        let mut out = [0; SIZE];
        out[..8].copy_from_slice(&self.time.to_le_bytes());
        out[8..10].copy_from_slice(&self.kind.to_le_bytes());
        out[12..16].copy_from_slice(&self.a.to_le_bytes());
        out[16..].copy_from_slice(&self.b.to_le_bytes());
        out
    }

    /// The events of `bytes`, a whole number of [`SIZE`] records; a
    /// trailing partial record is ignored.
    pub fn decode_all(bytes: &[u8]) -> impl Iterator<Item = Event> + '_ {
        bytes.chunks_exact(SIZE).map(|e| Event {
            time: u64::from_le_bytes(e[..8].try_into().expect("8 bytes")),
            kind: u16::from_le_bytes([e[8], e[9]]),
            a: u32::from_le_bytes(e[12..16].try_into().expect("4 bytes")),
            b: u64::from_le_bytes(e[16..].try_into().expect("8 bytes")),
        })
    }
}

#[cfg(feature = "trace")]
mod ring;
#[cfg(feature = "trace")]
pub use ring::{Span, flush, record};

/// Records an event of [`Kind`] `$kind` with arguments `$a` and `$b` when
/// the image is built with tracing; otherwise nothing (the arguments are
/// type-checked, never evaluated).
#[cfg(feature = "trace")]
#[macro_export]
macro_rules! trace_event {
    ($kind:ident, $a:expr, $b:expr $(,)?) => {
        $crate::trace::record($crate::trace::Kind::$kind, $a as u32, $b as u64)
    };
}

/// Records an event (see the `trace` feature's documentation).
#[cfg(not(feature = "trace"))]
#[macro_export]
macro_rules! trace_event {
    ($kind:ident, $a:expr, $b:expr $(,)?) => {
        if false {
            let _ = ($a, $b);
        }
    };
}

/// A span named `$name` (a string literal) until the value it returns is
/// dropped: `let _span = unikernel::trace_span!("parse");`. Nothing without
/// the `trace` feature.
#[cfg(feature = "trace")]
#[macro_export]
macro_rules! trace_span {
    ($name:literal) => {
        $crate::trace::Span::enter($name)
    };
}

/// A span (see the `trace` feature's documentation).
#[cfg(not(feature = "trace"))]
#[macro_export]
macro_rules! trace_span {
    ($name:literal) => {
        ()
    };
}

/// Its items or statements, only in images built with tracing: for state
/// an instrumentation point keeps (a component's crate cannot see the
/// runtime's cargo features).
#[cfg(feature = "trace")]
#[macro_export]
macro_rules! if_tracing {
    ($($code:tt)*) => { $($code)* };
}

/// Its items or statements, only in images built with tracing.
#[cfg(not(feature = "trace"))]
#[macro_export]
macro_rules! if_tracing {
    ($($code:tt)*) => {};
}

#[cfg(test)]
mod tests {
    use super::{Event, Kind};

    #[test]
    fn events_round_trip_and_unknown_kinds_stay_unknown() {
        let event = Event { time: 1_234_567_890_123, kind: Kind::TcpState as u16, a: 80, b: 51_000 << 16 | 3 << 8 | 4 };
        let unknown = Event { kind: 200, ..event };
        let mut bytes = [event.encode(), unknown.encode()].concat();
        bytes.push(7); // a partial record
        let decoded: Vec<Event> = Event::decode_all(&bytes).collect();
        assert_eq!(decoded, [event, unknown]);
        assert_eq!((decoded[0].kind(), decoded[1].kind()), (Some(Kind::TcpState), None));
    }

    #[test]
    fn every_kind_decodes_as_itself() {
        for kind in Kind::ALL {
            let event = Event { time: 1, kind: kind as u16, a: 2, b: 3 };
            assert_eq!(Event::decode_all(&event.encode()).next().and_then(|e| e.kind()), Some(kind));
        }
    }
}
