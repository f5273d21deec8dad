//! `--pcap`: the `capture` example (`unikernel_net::pcap`) sends every
//! frame over the host channel and the runner writes them to a pcap file.
//! Debian's tcpdump reads it, the curl exchange is in it, and it holds the
//! same frames as QEMU's own capture of the device's traffic (a
//! `filter-dump` on the netdev, outside the guest). `capture_fast` does the
//! same on the channel's virtio console, beside the log's.

mod common;

use common::guest::{Guest, free_port, run, text};
use std::path::Path;

/// The packets of `file` as tcpdump prints them, without timestamps.
fn packets(file: &Path) -> Vec<String> {
    let out = run("tcpdump", &["-n", "-t", "-r", &file.display().to_string()]);
    assert!(out.status.success(), "tcpdump -r {}: {}", file.display(), text(&out));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// Where the runner said the guest's log goes.
const LOG_AT: &str = "unikernel-runner: the guest's log goes to ";

#[test]
fn the_capture_holds_the_curl_exchange_frame_for_frame_as_qemu_saw_it() {
    let (console, _) = capture_curl_exchange("capture");
    assert!(console.contains("DHCP gave"), "the log is on the serial console:\n{console}");
}

#[test]
fn on_the_channels_virtio_console_too_with_the_log_on_another() {
    let (console, runner) = capture_curl_exchange("capture_fast");
    let log = runner.lines().find_map(|l| l.strip_prefix(LOG_AT)).expect("the runner names the log file");
    let log = std::fs::read_to_string(log).expect("read the log file");
    assert!(log.contains("DHCP gave") && !log.contains("uk:"), "the log file holds the log only:\n{log}");
    assert!(!console.contains("DHCP gave"), "the log is not on the serial console:\n{console}");
}

/// Runs example `name`, captures a curl exchange, and checks the capture
/// against QEMU's; returns the console and the runner's messages.
fn capture_curl_exchange(name: &str) -> (String, String) {
    let dir = std::env::temp_dir().join(format!("unikernel-pcap-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ours, qemus) = (dir.join("guest.pcap"), dir.join("qemu.pcap"));
    let port = free_port();
    let dump = format!("filter-dump,id=dump,netdev=net0,file={}", qemus.display());
    let forward = format!("tcp:{port}:80");
    let pcap = ours.display().to_string();
    let args = ["--forward", &forward, "--pcap", &pcap, "--qemu-arg", "-object", "--qemu-arg", &dump];
    let mut guest = Guest::start(&[], name, &args);
    guest.wait_for_stderr(&format!("the guest's packets go to {pcap}"));
    guest.wait_for(&format!("{name}: serving on port 80"));
    let url = format!("http://127.0.0.1:{port}/seen-by-tcpdump");
    let out = run("curl", &["-s", "--max-time", "60", &url]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "captured /seen-by-tcpdump\n", "{}", text(&out));
    // The connection's last ACK is the guest's: give it time to be sent.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (console, runner) = guest.stop();
    assert!(!console.contains("uk:"), "channel lines are not shown on the console:\n{console}");

    let (mut ours, mut qemus) = (packets(&ours), packets(&qemus));
    let _ = std::fs::remove_dir_all(&dir);
    for needle in ["HTTP: GET /seen-by-tcpdump HTTP/1.1", "HTTP: HTTP/1.1 200 OK", "Flags [S.]", "BOOTP/DHCP"] {
        assert!(ours.iter().any(|p| p.contains(needle)), "no {needle:?} in the capture:\n{}", ours.join("\n"));
    }
    // The same frames, each once; the order of a sent and a received frame
    // may differ between the two sides of the device.
    ours.sort();
    qemus.sort();
    assert_eq!(ours, qemus, "the guest's capture and QEMU's differ");
    (console, runner)
}

#[test]
fn pcap_on_an_image_that_does_not_capture_is_refused() {
    let file = std::env::temp_dir().join(format!("unikernel-nocapture-{}.pcap", std::process::id()));
    let run = common::boot_example("http", &["--pcap", &file.display().to_string()]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("does not capture packets; name `unikernel_net::pcap`"), "{}", run.stderr);
    assert!(!file.exists(), "no file is made");
}
