//! Streams the guest's serial console to stdout as it arrives, adds the
//! function name under a crash report's code-address lines (`at pc 0x...`,
//! and the backtrace's `called from 0x...`: `unikernel_core::crash`), picks out the lines that say the guest
//! listens on a port, and hands the host channel's lines to their sinks
//! (`crate::channel`) instead of showing them.

use crate::channel::{Demux, Piece, Router};
use crate::image::Image;
use std::io::{Read, Write};
use unikernel_core::crash::CodeLine;
use unikernel_core::exit;
use unikernel_core::forward::Listening;

/// What the console said, for the run's outcome.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen {
    /// Whether the guest printed anything.
    pub printed: bool,
    /// The status of the last exit line (`unikernel_core::exit::ConsoleLine`),
    /// which a guest prints when it has no exit device.
    pub exit: Option<u8>,
}

/// Streams the console to its end. `listening` is called after each line
/// saying the guest listens on a port has been passed through; the console
/// waits for it, so what the guest prints next (`serving on ...`) shows
/// only once the port's forward is open.
pub fn stream(mut from: impl Read, image: &Image, router: &Router, mut listening: impl FnMut(Listening)) -> Seen {
    let mut seen = Seen::default();
    let mut on_line = |text: &str| {
        if let Some(port) = Listening::parse(text) {
            let _ = std::io::stdout().flush();
            listening(port);
        }
        seen.exit = exit::from_console(text).or(seen.exit);
    };
    let mut out = std::io::stdout();
    let mut line = Vec::new();
    let mut demux = Demux::default();
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.printed = true;
        demux.feed(&buf[..n], |piece| match piece {
            Piece::Line(channel) => router.serial_line(channel),
            Piece::Text(text) => show(text, &mut line, &mut out, image, &mut on_line),
        });
    }
    router.serial_ended();
    seen
}

/// Passes `text` through at once (partial lines included) so the console
/// feels live; a completed crash-report line gets its note right after.
/// `line` holds the current line across calls.
fn show(text: &[u8], line: &mut Vec<u8>, out: &mut impl Write, image: &Image, on_line: &mut impl FnMut(&str)) {
    let mut rest = text;
    while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
        let (done, tail) = rest.split_at(newline + 1);
        line.extend_from_slice(done);
        let _ = out.write_all(done);
        let text = String::from_utf8_lossy(line);
        if let Some(note) = annotate(&text, image) {
            let _ = writeln!(out, "{note}");
        }
        on_line(&text);
        line.clear();
        rest = tail;
    }
    line.extend_from_slice(rest);
    let _ = out.write_all(rest).and_then(|()| out.flush());
}

fn annotate(line: &str, image: &Image) -> Option<String> {
    let code = CodeLine::parse(line)?;
    let name = image.symbolize(code.code_address()?)?;
    Some(match code {
        CodeLine::At(_) => format!("    in {name}"),
        CodeLine::CalledFrom(_) => format!("      {name}"),
    })
}
