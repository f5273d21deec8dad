//! Metrics (`unikernel::metrics`): `examples/http` serves them at
//! `/metrics` in the Prometheus text format, and `--metrics` prints a
//! guest's metrics when it exits.

mod common;

use common::guest::{Guest, free_port, run, text};
use std::collections::BTreeMap;
use unikernel_testing::symbols_of;

/// The samples of a Prometheus text exposition, by name, after checking
/// that each comes after its `# HELP` and `# TYPE` lines.
fn samples(exposition: &str) -> BTreeMap<String, u64> {
    let mut samples = BTreeMap::new();
    let (mut help, mut kind) = (None, None);
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ').map(|(name, _)| name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, t) = rest.split_once(' ').expect("# TYPE NAME TYPE");
            assert!(t == "counter" || t == "gauge", "type {t:?}");
            kind = Some(name.to_string());
        } else {
            let (name, value) = line.split_once(' ').unwrap_or_else(|| panic!("a sample: {line:?}"));
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "metric name {name:?}");
            assert_eq!((help.as_deref(), kind.as_deref()), (Some(name), Some(name)), "HELP and TYPE before {name}");
            let value = value.parse().unwrap_or_else(|_| panic!("{name}: value {value:?}"));
            assert!(samples.insert(name.to_string(), value).is_none(), "{name} twice");
        }
    }
    samples
}

/// One scrape of `/metrics` on its own connection: the content type and
/// the samples.
fn scrape(port: u16) -> (String, BTreeMap<String, u64>) {
    let out = text(&run(
        "curl",
        &["-s", "--max-time", "30", "-w", "\n%{content_type}", &format!("http://127.0.0.1:{port}/metrics")],
    ));
    let (body, content_type) = out.rsplit_once('\n').expect("curl's -w line");
    (content_type.to_string(), samples(body))
}

#[test]
fn http_serves_metrics_that_count_between_scrapes() {
    let port = free_port();
    let mut guest = Guest::start(&[], "http", &["--forward", &format!("{port}:80")]);
    guest.wait_for("serving on");
    let (content_type, first) = scrape(port);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let (_, second) = scrape(port);
    for name in ["unikernel_http_requests_total", "unikernel_http_connections_total", "unikernel_tcp_accepted_total"] {
        assert!(first[name] >= 1, "{name}: the first scrape counts itself: {first:?}");
        assert_eq!(second[name], first[name] + 1, "{name}: one more request on one more connection");
    }
    for name in ["unikernel_net_rx_frames_total", "unikernel_net_tx_frames_total", "unikernel_interrupts_total"] {
        assert!(second[name] > first[name], "{name}: {} -> {}", first[name], second[name]);
    }
    assert!(second["unikernel_heap_peak_bytes"] >= second["unikernel_heap_used_bytes"], "{second:?}");
    assert!(second["unikernel_heap_used_bytes"] > 0, "{second:?}");
    guest.kill();
}

#[test]
fn the_metrics_flag_prints_the_metrics_at_exit_and_nothing_without_it() {
    let with = common::boot_example("metrics", &["--metrics"]);
    with.assert(0, &["3 rounds, 12 tasks spawned"]);
    assert!(!with.stdout.contains('\x1e'), "channel lines stay off the console:\n{}", with.stdout);
    let from = &with.stderr[with.stderr.find("# HELP").expect("metrics on stderr")..];
    let block: Vec<&str> = from
        .lines()
        .take_while(|l| l.starts_with("# ") || l.starts_with("unikernel_") || l.starts_with("app_"))
        .collect();
    let at_exit = samples(&block.join("\n"));
    assert_eq!(at_exit["app_rounds_total"], 3, "the application's own counter: {at_exit:?}");
    assert_eq!(at_exit["unikernel_tasks_spawned_total"], 12, "{at_exit:?}");
    assert_eq!(at_exit["unikernel_tasks"], 0, "every task finished: {at_exit:?}");
    assert!(at_exit["unikernel_heap_peak_bytes"] >= 4 * 512 * 8, "four live 4 KiB vectors at once: {at_exit:?}");
    assert!(!at_exit.contains_key("unikernel_net_rx_frames_total"), "no net in this image: {at_exit:?}");

    let without = common::boot_example("metrics", &[]);
    without.assert(0, &["3 rounds"]);
    assert!(!without.stdout.contains('\x1e') && !without.stderr.contains("# HELP"), "{}", without.stderr);
}

#[test]
fn the_metrics_flag_is_refused_for_an_image_without_the_exporter() {
    let run = common::boot_example("hello", &["--metrics"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("name `unikernel::metrics::at_exit`"), "{}", run.stderr);
}

#[test]
fn the_exporter_is_only_in_images_that_name_it() {
    let image = |name: &str| std::fs::read(common::examples(common::BARE).join(name)).expect("built");
    // The sender, the renderer and the channel's encoder; the hook the
    // runtime checks on its way out (`metrics::before_exit`) is in every image.
    let exporter = |data: &[u8]| -> Vec<String> {
        let ours = ["7metrics4send", "7metrics6render", "6AtExit"];
        let core = symbols_of(data, "unikernel_core").into_iter().filter(|s| ours.iter().any(|o| s.contains(o)));
        core.chain(symbols_of(data, "base64")).collect()
    };
    assert_eq!(exporter(&image("hello")), Vec::<String>::new(), "hello does not name metrics::at_exit");
    let named = exporter(&image("metrics"));
    for needed in ["7metrics4send", "7metrics6render", "base64"] {
        assert!(named.iter().any(|s| s.contains(needed)), "{needed} missing: {named:?}");
    }
}

#[test]
fn kv_counts_block_writes_and_its_keys() {
    let disk = std::env::temp_dir().join(format!("unikernel-metrics-kv-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&disk);
    let port = free_port();
    let disk_arg = disk.display().to_string();
    let mut guest = Guest::start(&[], "kv", &["--disk", &disk_arg, "--forward", &format!("{port}:80"), "format"]);
    guest.wait_for("kv: serving on");
    let (_, before) = scrape(port);
    assert_eq!(before["unikernel_kv_keys"], 0, "a fresh store: {before:?}");
    for key in ["a", "b"] {
        let url = format!("http://127.0.0.1:{port}/kv/{key}");
        let out = text(&run("curl", &["-s", "--max-time", "30", "-X", "PUT", "--data-binary", "value", &url]));
        assert_eq!(out, "stored\n");
    }
    let (_, after) = scrape(port);
    guest.kill();
    let _ = std::fs::remove_file(&disk);
    assert_eq!(after["unikernel_kv_keys"], 2, "{after:?}");
    assert!(after["unikernel_kv_live_bytes"] >= 2 * 512, "a sector per record at least: {after:?}");
    let written = |m: &BTreeMap<String, u64>| (m["unikernel_block_writes_total"], m["unikernel_block_flushes_total"]);
    let (writes, flushes) = (written(&after).0 - written(&before).0, written(&after).1 - written(&before).1);
    assert!(writes >= 2 && flushes >= 2, "each put writes and flushes: {writes} writes, {flushes} flushes");
    assert!(after["unikernel_block_written_bytes_total"] >= before["unikernel_block_written_bytes_total"] + 2 * 512);
}
