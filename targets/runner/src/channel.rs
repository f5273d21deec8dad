//! The host side of the guest's channel (`unikernel_core::channel`): its
//! lines are taken out of the console output ([`Demux`]) and their bytes
//! appended to the stream's sink ([`Sinks`]): a file the user named, or
//! standard error at exit. When the image carries the channel on a virtio
//! console of its own (`unikernel_virtio_console::channel`), that console's
//! lines go to the same sinks ([`Router`]).

use crate::image::Image;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use unikernel_core::channel::{self, CHUNK, stream};

/// The streams this runner has a place for.
pub const STREAMS: &[u16] = &[stream::PCAP, stream::TRACE, stream::METRICS];
/// The most of a trace held for conversion at the end (the guest streams
/// it); the rest is dropped, and the runner says so.
const MAX_TRACE: usize = 256 << 20;
/// The most held of a stream printed at exit; the rest is dropped.
const MAX_HELD: usize = 1 << 20;

/// The longest channel line accepted: one chunk, base64-encoded, with its
/// mark, a stream name and `\r\n`. A longer one is not the guest's runtime
/// speaking, and is dropped without being held in memory.
const MAX_LINE: usize = CHUNK.div_ceil(3) * 4 + 64;

/// A piece of console output.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Console text, to show.
    Text(&'a [u8]),
    /// A complete channel line, `\n` included.
    Line(&'a [u8]),
}

/// Splits console output into text and channel lines, across reads.
#[derive(Default)]
pub struct Demux {
    /// The channel line being read, if one started.
    line: Option<Vec<u8>>,
    /// The channel line being read is too long: skip to its end.
    skipping: bool,
}

impl Demux {
    /// Splits `bytes` into pieces, in order. A channel line starts at the
    /// mark's first byte (`\x1e`) wherever it appears and ends at `\n`.
    pub fn feed(&mut self, mut bytes: &[u8], mut piece: impl FnMut(Piece<'_>)) {
        while !bytes.is_empty() {
            if self.line.is_some() || self.skipping {
                let end = bytes.iter().position(|&b| b == b'\n');
                let (part, rest) = bytes.split_at(end.map_or(bytes.len(), |e| e + 1));
                bytes = rest;
                if !self.skipping {
                    let line = self.line.as_mut().expect("in a line");
                    line.extend_from_slice(part);
                    if line.len() > MAX_LINE {
                        self.line = None;
                        self.skipping = true;
                    }
                }
                if end.is_some() {
                    if let Some(line) = self.line.take() {
                        piece(Piece::Line(&line));
                    }
                    self.skipping = false;
                }
                continue;
            }
            match bytes.iter().position(|&b| b == channel::MARK[0]) {
                Some(start) => {
                    if start > 0 {
                        piece(Piece::Text(&bytes[..start]));
                    }
                    self.line = Some(Vec::new());
                    bytes = &bytes[start..];
                }
                None => {
                    piece(Piece::Text(bytes));
                    bytes = &[];
                }
            }
        }
    }
}

/// Where a stream's bytes go.
enum Sink {
    /// Straight into a file.
    File(File),
    /// Held, then converted into a trace file at the end.
    Trace(Vec<u8>),
    /// Held, then printed to standard error at the end.
    AtExit(Vec<u8>),
}

/// Where each stream's bytes go.
#[derive(Default)]
pub struct Sinks {
    places: Vec<(u16, PathBuf, Sink)>,
}

impl Sinks {
    /// `stream` goes to `path`, created or truncated now.
    pub fn file(&mut self, stream: u16, path: &Path) -> Result<(), String> {
        let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        self.places.push((stream, path.to_owned(), Sink::File(file)));
        Ok(())
    }

    /// The trace stream goes to `path` as a Chrome trace (`crate::trace`),
    /// written when the run ends; created now, so that a path that cannot
    /// be written is refused before the guest runs.
    pub fn trace(&mut self, path: &Path) -> Result<(), String> {
        File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        self.places.push((stream::TRACE, path.to_owned(), Sink::Trace(Vec::new())));
        Ok(())
    }

    /// `stream` is printed to standard error when the run ends.
    pub fn at_exit(&mut self, stream: u16) {
        self.places.push((stream, PathBuf::new(), Sink::AtExit(Vec::new())));
    }

    /// Appends `bytes` to `stream`'s place; bytes on a stream nobody asked
    /// for are dropped.
    fn write(&mut self, stream: u16, bytes: &[u8]) {
        let Some((_, path, sink)) = self.places.iter_mut().find(|(id, ..)| *id == stream) else { return };
        match sink {
            Sink::File(file) => {
                if let Err(e) = file.write_all(bytes) {
                    eprintln!("unikernel-runner: writing {}: {e}", path.display());
                }
            }
            Sink::Trace(held) => hold(held, bytes, MAX_TRACE),
            Sink::AtExit(held) => hold(held, bytes, MAX_HELD),
        }
    }

    /// Ends the run: flushes the files, converts and writes the trace,
    /// prints the streams held for the end.
    pub fn finish(self, image: &Image) {
        for (_, path, sink) in self.places {
            let written = match sink {
                Sink::File(mut file) => file.flush(),
                Sink::Trace(held) => {
                    if held.len() == MAX_TRACE {
                        eprintln!("unikernel-runner: the trace passed {MAX_TRACE} bytes; its end was dropped");
                    }
                    let events = held.len() / unikernel_core::trace::SIZE;
                    let written = std::fs::write(&path, crate::trace::chrome_json(&held, image));
                    if written.is_ok() {
                        eprintln!(
                            "unikernel-runner: {events} trace events in {} (open it in ui.perfetto.dev)",
                            path.display()
                        );
                    }
                    written
                }
                Sink::AtExit(held) => {
                    eprint!("{}", String::from_utf8_lossy(&held));
                    Ok(())
                }
            };
            if let Err(e) = written {
                eprintln!("unikernel-runner: writing {}: {e}", path.display());
            }
        }
    }
}

/// Appends what fits of `bytes` to `held` under `max` bytes.
fn hold(held: &mut Vec<u8>, bytes: &[u8], max: usize) {
    let room = max.saturating_sub(held.len());
    held.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// The sinks, fed by the serial console and by the channel's own console.
/// The latter's lines wait until the serial console has said that the
/// channel moved ([`stream::MOVED`]): lines the guest sent on the serial
/// console before then are written first, whichever reader runs first.
pub struct Router {
    state: Mutex<State>,
    moved: Condvar,
}

struct State {
    sinks: Sinks,
    /// The serial console said the channel moved, or ended.
    moved: bool,
}

impl Router {
    /// Routes to `sinks`.
    pub fn new(sinks: Sinks) -> Self {
        Self { state: Mutex::new(State { sinks, moved: false }), moved: Condvar::new() }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one line from the serial console; one that is malformed or on
    /// a stream nobody asked for is dropped.
    pub fn serial_line(&self, line: &[u8]) {
        match channel::parse(line) {
            Some((stream::MOVED, _)) => self.serial_ended(),
            Some((stream, bytes)) => self.state().sinks.write(stream, &bytes),
            None => {}
        }
    }

    /// The serial console ended: the channel's console need not wait.
    pub fn serial_ended(&self) {
        self.state().moved = true;
        self.moved.notify_all();
    }

    /// Reads the channel's own console to its end. It carries only channel
    /// lines: any text on it is not the guest's runtime speaking, and is
    /// dropped.
    pub fn read_channel(&self, mut from: impl Read) {
        let mut demux = Demux::default();
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            demux.feed(&buf[..n], |piece| {
                let Piece::Line(line) = piece else { return };
                let Some((stream, bytes)) = channel::parse(line) else { return };
                let state = self.moved.wait_while(self.state(), |s| !s.moved);
                state.unwrap_or_else(|e| e.into_inner()).sinks.write(stream, &bytes);
            });
        }
    }

    /// Ends the run: see [`Sinks::finish`].
    pub fn finish(self, image: &Image) {
        self.state.into_inner().unwrap_or_else(|e| e.into_inner()).sinks.finish(image);
    }
}

#[cfg(test)]
mod tests {
    use super::{Demux, MAX_LINE, Piece, Router, Sinks};
    use unikernel_core::channel::stream;

    /// Feeds `input` split at every `step` bytes; the text shown and the
    /// channel lines taken.
    fn split(input: &[u8], step: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
        let (mut text, mut lines) = (Vec::new(), Vec::new());
        let mut demux = Demux::default();
        for part in input.chunks(step) {
            demux.feed(part, |piece| match piece {
                Piece::Text(t) => text.extend_from_slice(t),
                Piece::Line(l) => lines.push(l.to_vec()),
            });
        }
        (text, lines)
    }

    #[test]
    fn channel_lines_leave_the_text_whole_wherever_the_reads_split() {
        let input = b"serving\nhalf a li\x1euk:pcap AAEC\r\nne\n\x1euk:m AA==\r\ndone\n";
        for step in 1..=input.len() {
            let (text, lines) = split(input, step);
            assert_eq!(text, b"serving\nhalf a line\ndone\n", "step {step}");
            assert_eq!(lines, [&b"\x1euk:pcap AAEC\r\n"[..], b"\x1euk:m AA==\r\n"], "step {step}");
        }
    }

    #[test]
    fn the_channel_consoles_lines_wait_for_the_serial_consoles_earlier_ones() {
        let path = std::env::temp_dir().join(format!("unikernel-router-{}", std::process::id()));
        let mut sinks = Sinks::default();
        sinks.file(stream::PCAP, &path).unwrap();
        let router = Router::new(sinks);
        std::thread::scope(|scope| {
            // The channel's console is read first: its line must wait.
            let reader = scope.spawn(|| router.read_channel(&b"\x1euk:1 c2Vjb25k\n"[..]));
            std::thread::sleep(std::time::Duration::from_millis(100));
            router.serial_line(b"\x1euk:1 Zmlyc3Qg\r\n");
            assert!(!reader.is_finished(), "the channel's line waits until the channel moved");
            router.serial_line(b"\x1euk:0 \r\n");
            reader.join().unwrap();
        });
        router.finish(&crate::image::Image::empty());
        assert_eq!(std::fs::read(&path).unwrap(), b"first second");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_endless_channel_line_is_dropped_not_held() {
        let mut input = b"\x1euk:pcap ".to_vec();
        input.extend(std::iter::repeat_n(b'A', 10 * MAX_LINE));
        input.extend_from_slice(b"\nafter\n");
        let (text, lines) = split(&input, 4096);
        assert_eq!((text.as_slice(), lines.len()), (&b"after\n"[..], 0));
    }
}
