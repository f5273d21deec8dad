//! Streams the guest's serial console to stdout as it arrives, adds the
//! function name under a crash report's code-address lines (`at pc 0x...`,
//! and the backtrace's `called from 0x...`: `unikernel_core::crash`), and picks out the lines that say the guest
//! listens on a port.

use crate::image::Image;
use std::io::{Read, Write};
use unikernel_core::crash::CodeLine;
use unikernel_core::forward::Listening;

/// Returns whether the guest printed anything. `listening` is called after
/// each line saying the guest listens on a port has been passed through;
/// the console waits for it, so what the guest prints next (`serving on
/// ...`) shows only once the port's forward is open.
pub fn stream(mut from: impl Read, image: &Image, mut listening: impl FnMut(Listening)) -> bool {
    let mut printed = false;
    let mut out = std::io::stdout();
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        printed = true;
        // Pass bytes through at once (partial lines included) so the console
        // feels live; a completed crash-report line gets its note right after.
        let mut rest = &buf[..n];
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let (done, tail) = rest.split_at(newline + 1);
            line.extend_from_slice(done);
            let _ = out.write_all(done);
            let text = String::from_utf8_lossy(&line);
            if let Some(note) = annotate(&text, image) {
                let _ = writeln!(out, "{note}");
            }
            if let Some(port) = Listening::parse(&text) {
                let _ = out.flush();
                listening(port);
            }
            line.clear();
            rest = tail;
        }
        line.extend_from_slice(rest);
        let _ = out.write_all(rest).and_then(|()| out.flush());
    }
    printed
}

fn annotate(line: &str, image: &Image) -> Option<String> {
    let code = CodeLine::parse(line)?;
    let name = image.symbolize(code.code_address()?)?;
    Some(match code {
        CodeLine::At(_) => format!("    in {name}"),
        CodeLine::CalledFrom(_) => format!("      {name}"),
    })
}
