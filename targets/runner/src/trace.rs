//! `--trace`: the guest's trace events (`unikernel_core::trace`) as a
//! Chrome trace-event JSON file, which Perfetto (ui.perfetto.dev) and
//! chrome://tracing open. One track per kind of activity: the executor's
//! task polls and idle time, interrupts, TCP connections, disk requests,
//! the application's spans and the tracer's own sends.

use crate::image::Image;
use serde_json::{Value, json};
use unikernel_core::trace::{Event, Kind, MAIN};

/// The tracks, as (thread id, name).
const TRACKS: [(u32, &str); 6] =
    [(1, "executor"), (2, "interrupts"), (3, "tcp"), (4, "disk"), (5, "spans"), (6, "tracer")];

/// smoltcp's TCP states, in the order the guest numbers them.
const TCP_STATES: [&str; 11] = [
    "Closed",
    "Listen",
    "SynSent",
    "SynReceived",
    "Established",
    "FinWait1",
    "FinWait2",
    "CloseWait",
    "Closing",
    "LastAck",
    "TimeWait",
];

/// The trace of `bytes` (the guest's TRACE stream) as JSON; span names are
/// read from `image`. Events this runner does not know are skipped.
pub fn chrome_json(bytes: &[u8], image: &Image) -> String {
    let mut events: Vec<Value> = TRACKS
        .iter()
        .map(|(tid, name)| json!({"ph": "M", "name": "thread_name", "pid": 1, "tid": tid, "args": {"name": name}}))
        .collect();
    events.extend(Event::decode_all(bytes).filter_map(|e| convert(&e, image)));
    json!({"traceEvents": events, "displayTimeUnit": "ns"}).to_string()
}

/// Microseconds, the unit of the format, from the guest's nanoseconds.
fn micros(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn task(slot: u32) -> String {
    if slot == MAIN { "main".into() } else { format!("task {slot}") }
}

fn convert(e: &Event, image: &Image) -> Option<Value> {
    let ts = micros(e.time);
    let at = |tid: u32, ph: &str, name: String| json!({"ph": ph, "name": name, "pid": 1, "tid": tid, "ts": ts});
    let instant = |tid: u32, name: String| {
        let mut v = at(tid, "i", name);
        v["s"] = "t".into();
        v
    };
    let (a, b) = (e.a, e.b);
    Some(match e.kind()? {
        Kind::PollStart => at(1, "B", format!("poll {}", task(a))),
        Kind::PollEnd => {
            let mut v = at(1, "E", format!("poll {}", task(a)));
            v["args"] = json!({"finished": b != 0});
            v
        }
        Kind::IdleStart => at(1, "B", "idle".into()),
        Kind::IdleEnd => at(1, "E", "idle".into()),
        Kind::Spawn => instant(1, format!("spawn {}", task(a))),
        Kind::Wake => instant(1, format!("wake {}", task(a))),
        Kind::Timers => instant(1, format!("{a} timer(s) fired")),
        Kind::InterruptStart => at(2, "B", format!("irq {a}")),
        Kind::InterruptEnd => at(2, "E", format!("irq {a}")),
        Kind::TcpState => {
            let state = |s: u64| TCP_STATES.get(s as usize).copied().unwrap_or("?");
            let (remote, from, to) = (b >> 16 & 0xffff, state(b >> 8 & 0xff), state(b & 0xff));
            instant(3, format!(":{a} <-> :{remote} {from} -> {to}"))
        }
        Kind::BlockStart | Kind::BlockEnd => {
            let start = e.kind() == Some(Kind::BlockStart);
            let op = ["read", "write", "flush"].get(a as usize).copied().unwrap_or("?");
            let name = if start { format!("{op} @{b}") } else { "disk".into() };
            let mut v = at(4, if start { "b" } else { "e" }, name);
            v["cat"] = "disk".into();
            v["id"] = b.into();
            if !start {
                v["args"] = json!({"ok": a == 0});
            }
            v
        }
        Kind::SpanStart | Kind::SpanEnd => {
            let name = image.static_str(b, a as usize).unwrap_or_else(|| format!("span@{b:#x}"));
            let mut v = at(5, if e.kind() == Some(Kind::SpanStart) { "b" } else { "e" }, name);
            v["cat"] = "span".into();
            v["id"] = b.into();
            v
        }
        Kind::Dropped => instant(6, format!("ring full: {a} events dropped")),
        Kind::Flushed => {
            let mut v = at(6, "X", "send to host".into());
            v["ts"] = micros(b).into();
            v["dur"] = micros(e.time.saturating_sub(b)).into();
            v
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{TCP_STATES, chrome_json};
    use crate::image::Image;
    use serde_json::Value;
    use unikernel_core::trace::{Event, Kind, MAIN};

    fn bytes(events: &[(u64, Kind, u32, u64)]) -> Vec<u8> {
        events.iter().flat_map(|&(time, kind, a, b)| Event { time, kind: kind as u16, a, b }.encode()).collect()
    }

    #[test]
    fn events_become_trace_events_on_their_tracks() {
        let trace = bytes(&[
            (1_000, Kind::PollStart, MAIN, 0),
            (2_500, Kind::PollEnd, MAIN, 0),
            (3_000, Kind::TcpState, 80, 51_000 << 16 | 3 << 8 | 4),
            (4_000, Kind::BlockStart, 1, 7),
            (9_000, Kind::BlockEnd, 0, 7),
            (10_000, Kind::Flushed, 0, 9_500),
        ]);
        let mut with_junk = trace.clone();
        with_junk.extend_from_slice(&Event { time: 1, kind: 999, a: 0, b: 0 }.encode());
        with_junk.push(1); // a partial event
        let json: Value = serde_json::from_str(&chrome_json(&with_junk, &Image::empty())).unwrap();
        let events = json["traceEvents"].as_array().unwrap();
        let names: Vec<&str> = events.iter().filter(|e| e["ph"] != "M").map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["poll main", "poll main", ":80 <-> :51000 SynReceived -> Established", "write @7", "disk", "send to host"]
        );
        assert_eq!(events[6]["ts"], 1.0, "microseconds");
        assert_eq!((events[11]["ts"].as_f64(), events[11]["dur"].as_f64()), (Some(9.5), Some(0.5)));
        assert_eq!(TCP_STATES[4], "Established");
    }

    #[test]
    fn hostile_arguments_name_nothing_they_should_not() {
        let trace = bytes(&[(1, Kind::TcpState, 0, u64::MAX), (2, Kind::SpanStart, u32::MAX, u64::MAX)]);
        let json: Value = serde_json::from_str(&chrome_json(&trace, &Image::empty())).unwrap();
        let names: Vec<&str> =
            json["traceEvents"].as_array().unwrap()[6..].iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(names, [":0 <-> :65535 ? -> ?", "span@0xffffffffffffffff"]);
    }
}
