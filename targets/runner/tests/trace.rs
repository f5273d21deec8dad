//! `--trace`: the `traced` example, built with the `trace` feature, serves
//! curl while the runtime and the stacks record what they do; the runner
//! writes a Chrome trace that holds every kind of event in order: task
//! polls, interrupts, the TCP handshake, the block requests and the
//! application's spans.

mod common;

use common::guest::{Guest, free_port, run, text};
use serde_json::Value;
use unikernel_testing::cargo_bare;

/// The names of `events` on track `tid` with phase `ph`.
fn names<'a>(events: &'a [Value], tid: u64, ph: &str) -> Vec<&'a str> {
    events.iter().filter(|e| e["tid"] == tid && e["ph"] == ph).map(|e| e["name"].as_str().unwrap()).collect()
}

#[test]
fn a_traced_server_records_its_tasks_interrupts_connections_and_disk_in_order() {
    let built = cargo_bare(&["build", "--example", "traced", "--features", "trace"], &[]);
    assert!(built.ok, "{}", built.stderr);
    let dir = std::env::temp_dir().join(format!("unikernel-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (file, disk) = (dir.join("traced.json"), dir.join("disk.img"));
    let port = free_port();
    let (forward, trace, disk_arg) = (format!("tcp:{port}:80"), file.display().to_string(), disk.display().to_string());
    let args = ["--forward", &forward, "--trace", &trace, "--disk", &disk_arg, "--disk-size", "1M"];
    let mut guest = Guest::start(&[], "traced", &args);
    guest.wait_for("traced: serving on port 80");
    for visit in 1..=2 {
        let out = run("curl", &["-s", "--max-time", "60", &format!("http://127.0.0.1:{port}/")]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("visits: {visit}\n"), "{}", text(&out));
    }
    // The guest sends its events when it next idles: let it, before the stop.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (_, stderr) = guest.stop();
    assert!(stderr.contains(&format!("trace events in {trace}")), "{stderr}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).expect("the trace is JSON");
    let _ = std::fs::remove_dir_all(&dir);
    let events = json["traceEvents"].as_array().expect("traceEvents");

    // Recorded in the order things happened, on one CPU.
    let times: Vec<f64> =
        events.iter().filter(|e| e["ph"] != "M" && e["ph"] != "X").map(|e| e["ts"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "timestamps go backwards");
    // The executor: polls of main and of the connection tasks, idle time.
    let polls = names(events, 1, "B");
    assert!(polls.contains(&"poll main") && polls.iter().any(|p| p.starts_with("poll task")), "{polls:?}");
    assert!(polls.contains(&"idle"), "{polls:?}");
    assert!(names(events, 1, "i").iter().any(|n| n.starts_with("spawn task")));
    // virtio interrupts (the NIC's and the disk's).
    assert!(!names(events, 2, "B").is_empty(), "no interrupt");
    // Two handshakes on port 80, seen as state changes.
    let tcp = names(events, 3, "i");
    for change in ["Listen -> SynReceived", "SynReceived -> Established"] {
        let seen = tcp.iter().filter(|t| t.starts_with(":80 <-> :") && t.ends_with(change)).count();
        assert_eq!(seen, 2, "{change} on port 80: {tcp:?}");
    }
    // Each visit reads, writes and flushes sector 0, inside a `visit` span.
    assert_eq!(names(events, 4, "b").iter().filter(|n| **n == "write @0").count(), 2, "{:?}", names(events, 4, "b"));
    assert_eq!(names(events, 4, "b").iter().filter(|n| **n == "flush @0").count(), 2);
    assert_eq!(names(events, 4, "b").len(), names(events, 4, "e").len(), "every block request completes");
    assert_eq!((names(events, 5, "b"), names(events, 5, "e")), (vec!["visit"; 2], vec!["visit"; 2]));
}

#[test]
fn trace_on_an_image_built_without_tracing_is_refused() {
    let run = common::boot_example("hello", &["--trace", "/nonexistent/trace.json"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("was built without tracing; build it with the `trace` feature"), "{}", run.stderr);
}
