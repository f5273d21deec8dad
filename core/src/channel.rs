//! A channel to the host over the console: numbered byte streams (a
//! packet capture, a trace, metrics at exit) that the runner takes out of
//! the console output and writes where the user asked, so they need no
//! device of their own and work wherever the console does. A component
//! that sends on a stream declares it in its `NEEDS`
//! ([`Record::stream`](crate::vmm::Record::stream)): the runner learns
//! from the image's records, not from names, which streams it carries.
//!
//! Each [`send`] writes whole lines, one platform write each, so nothing
//! printed between them can split one:
//!
//! ```text
//! \x1e uk:ID BASE64 \n      (no spaces around `\x1e` and `uk:`; ID in decimal)
//! ```
//!
//! `\x1e` (ASCII record separator) never starts console text a user means
//! to read; the runner drops every line that starts with it from what it
//! shows, decodes the base64 (standard alphabet, padded) and appends the
//! bytes to STREAM in order. A stream's bytes are the concatenation of its
//! lines' payloads, so a writer may split its data anywhere.
//!
//! A component may give the lines a faster way out ([`set_transport`]: a
//! virtio console moves ~70x the bytes per second of the serial port under
//! TCG, `examples/bench_channel.rs`).
//! The console then carries one empty line on [`stream::MOVED`] first, and
//! every line the transport does not deliver whole.

use alloc::vec::Vec;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use core::fmt::Write as _;

/// The streams' ids (records of kind `Stream` carry them).
pub mod stream {
    /// Carries no bytes: its line on the console says that the lines after
    /// it come on the [transport](super::set_transport), whose lines the
    /// runner holds until it has read this one, so every stream stays in
    /// order across the move.
    pub const MOVED: u16 = 0;
    /// Frames as a pcap file: global header, then one record per frame.
    pub const PCAP: u16 = 1;
    /// Trace events (`crate::trace`), 24 bytes each.
    pub const TRACE: u16 = 2;
    /// Metrics in the Prometheus text format, sent when the guest exits.
    pub const METRICS: u16 = 3;
    /// Bytes the runner drops: the channel's benchmark (`bench_channel`).
    pub const DISCARD: u16 = u16::MAX;
}

/// What starts a channel line.
pub const MARK: &[u8] = b"\x1euk:";
/// Payload bytes per line: a line stays short enough for any console
/// reader, and a long send is never one huge allocation.
pub const CHUNK: usize = 3 * 1024;

/// The longest line [`send`] writes: a full chunk on the longest stream id.
pub const LINE: usize = MARK.len() + 5 + 1 + CHUNK.div_ceil(3) * 4 + 1;

/// Takes one whole line to the host; returns whether it delivered it
/// whole (when not, the line goes to the console as well).
pub type Transport = fn(&[u8]) -> bool;

static TRANSPORT: spin::Once<Transport> = spin::Once::new();

/// Sends every later line on `transport` first; `false` (and nothing
/// changes) when a transport was already set or there is no console yet.
pub fn set_transport(transport: Transport) -> bool {
    let Some(platform) = crate::platform::try_get() else { return false };
    let mut set = false;
    TRANSPORT.call_once(|| {
        platform.write(&line(stream::MOVED, &[]));
        set = true;
        transport
    });
    set
}

/// Sends `bytes` on `stream` (a [`stream`] id). Hosted, nothing reads the
/// process's output for channel lines (no runner runs it), so they are
/// dropped, with a warning the first time.
pub fn send(stream: u16, bytes: &[u8]) {
    if cfg!(not(target_os = "none")) {
        static WARNED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
        if !WARNED.swap(true, core::sync::atomic::Ordering::Relaxed) {
            log::warn!("channel: hosted, no runner reads the host channel; stream {stream} and any other are dropped");
        }
        return;
    }
    send_on(TRANSPORT.get().copied(), stream, bytes);
}

/// Sends `bytes` on `stream` on the console whatever the transport: to
/// compare the two (`examples/bench_channel.rs`).
pub fn send_on_console(stream: u16, bytes: &[u8]) {
    send_on(None, stream, bytes);
}

fn send_on(transport: Option<Transport>, stream: u16, bytes: &[u8]) {
    let Some(platform) = crate::platform::try_get() else { return };
    for chunk in bytes.chunks(CHUNK) {
        let line = line(stream, chunk);
        if !transport.is_some_and(|deliver| deliver(&line)) {
            platform.write(&line);
        }
    }
}

/// One channel line carrying `chunk`.
fn line(stream: u16, chunk: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(MARK.len() + 7 + chunk.len().div_ceil(3) * 4);
    line.extend_from_slice(MARK);
    // At most 5 digits: formatting into a Vec cannot fail.
    let _ = write!(Digits(&mut line), "{stream}");
    line.push(b' ');
    let start = line.len();
    line.resize(start + chunk.len().div_ceil(3) * 4, 0);
    // The buffer was sized for the padded encoding just above.
    let written = STANDARD.encode_slice(chunk, &mut line[start..]).expect("sized for the encoding");
    line.truncate(start + written);
    line.push(b'\n');
    line
}

/// Appends formatted text to a byte buffer.
struct Digits<'a>(&'a mut Vec<u8>);

impl core::fmt::Write for Digits<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A channel line, decoded: `(stream, payload)`; `None` for a line that
/// is not one or is malformed (the guest is untrusted).
pub fn parse(line: &[u8]) -> Option<(u16, Vec<u8>)> {
    let rest = line.strip_prefix(MARK)?;
    let rest = rest.strip_suffix(b"\n").unwrap_or(rest);
    let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
    let space = rest.iter().position(|&b| b == b' ')?;
    let stream = core::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
    let payload = STANDARD.decode(&rest[space + 1..]).ok()?;
    Some((stream, payload))
}

#[cfg(test)]
mod tests {
    use super::{CHUNK, LINE, MARK, line, parse};

    #[test]
    fn a_line_round_trips_any_bytes() {
        let bytes: Vec<u8> = (0..=255).collect();
        let encoded = line(7, &bytes);
        assert!(encoded.starts_with(MARK) && encoded.ends_with(b"\n"));
        assert_eq!(encoded.iter().filter(|&&b| b == b'\n').count(), 1, "one line, whatever the bytes");
        assert!(encoded.starts_with(b"\x1euk:7 "));
        assert_eq!(parse(&encoded), Some((7, bytes)));
        // The serial console turns `\n` into `\r\n`.
        let mut crlf = encoded.clone();
        crlf.insert(crlf.len() - 1, b'\r');
        assert_eq!(parse(&crlf).unwrap().1.len(), 256);
    }

    #[test]
    fn other_and_malformed_lines_are_not_channel_lines() {
        assert_eq!(parse(b"hello\n"), None);
        assert_eq!(parse(b"\x1euk:1\n"), None, "no payload separator");
        assert_eq!(parse(b"\x1euk:1 !!!\n"), None, "not base64");
        assert_eq!(parse(b"\x1euk:\xff AAAA\n"), None, "stream id not UTF-8");
        assert_eq!(parse(b"\x1euk:pcap AAAA\n"), None, "stream id not a number");
        assert_eq!(parse(b"\x1euk:70000 AAAA\n"), None, "stream id out of range");
        assert_eq!(parse(b"\x1euk:3 \n"), Some((3, Vec::new())));
    }

    #[test]
    fn chunks_keep_lines_short() {
        assert_eq!(line(u16::MAX, &[7; CHUNK]).len(), LINE);
        const { assert!(LINE < 4 * 1024 + 16) };
    }
}
