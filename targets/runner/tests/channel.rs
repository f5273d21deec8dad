//! The channel's virtio console (`unikernel_virtio_console::channel`) when
//! the host stops reading it: the guest does not hang, says so, and the
//! lines the console did not take come on the serial console instead, none
//! lost and none twice.

mod common;

use common::{BARE, examples, qemu_words};
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::process::Command;
use unikernel_core::channel::{self, stream};

/// The bytes of the complete channel lines in `output` on `stream`.
fn stream_bytes(output: &[u8], stream: u16) -> Vec<u8> {
    let lines = output.split_inclusive(|&b| b == b'\n').filter(|l| l.ends_with(b"\n"));
    let lines = lines.filter_map(channel::parse).filter(|(s, _)| *s == stream);
    lines.flat_map(|(_, bytes)| bytes).collect()
}

#[test]
fn a_channel_console_the_host_stops_reading_falls_back_to_the_serial_console() {
    let dir = std::env::temp_dir().join(format!("unikernel-stuck-channel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("channel.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    // The runner's command, with the channel's console on a socket this
    // test accepts and then does not read while QEMU runs.
    let mut words = qemu_words(&examples(BARE).join("bench_channel"), &["--", "mib=1"]);
    let chardev = words.iter_mut().find(|w| w.starts_with("file,id=channel0,")).expect("the channel's console");
    *chardev = format!("socket,id=channel0,path={}", socket.display());
    let qemu = Command::new("timeout").arg("300").args(&words).output();
    let (mut held, _) = listener.accept().expect("QEMU connects");
    let qemu = qemu.expect("run QEMU");
    let mut delivered = Vec::new();
    held.read_to_end(&mut delivered).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let console = String::from_utf8_lossy(&qemu.stdout);
    let text: String = console.lines().filter(|l| !l.starts_with('\x1e')).collect::<Vec<_>>().join("\n");
    assert_eq!(unikernel_core::exit::device_status(qemu.status.code().unwrap_or(-1)), Some(0), "{text}");
    assert!(text.contains("the device did not answer within its deadline; the device is no longer used"), "{text}");
    assert!(text.contains("bench_channel: 1 MiB each way"), "{text}");
    // The console took lines until it was full; the rest of the first
    // MiB, then the second, came on the serial console, in order.
    let (fast, serial) = (stream_bytes(&delivered, stream::DISCARD), stream_bytes(&qemu.stdout, stream::DISCARD));
    assert!(!fast.is_empty() && fast.len() < 1 << 20, "{} bytes on the channel's console", fast.len());
    let pattern: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    assert!([fast, serial].concat() == [&pattern[..], &pattern].concat(), "the stream is whole, each byte once");
}
