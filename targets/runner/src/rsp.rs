//! A client for the gdb remote serial protocol (RSP), as much as the
//! profiler needs from QEMU's gdb server: interrupt the guest, read its
//! registers and memory, let it continue.
//!
//! No kept crate fits: `gdbstub` and `gdb-protocol` are the server side.
//! The peer is QEMU, but what it relays (registers, guest memory) is the
//! guest's, so every reply is checked and a malformed one is an error.

use std::io::{self, BufReader, Read, Write};

/// The byte that asks a running target to stop (gdb's Ctrl-C).
const INTERRUPT: u8 = 0x03;
/// Bound on a reply: QEMU's largest (`g` with the vector registers) is a
/// few KiB.
const MAX_PACKET: usize = 64 << 10;

/// `$data#xx`, with `xx` the modulo-256 sum of `data` in hex. The runner's
/// commands are plain ASCII without `$#}*`, which would need escaping.
pub fn frame(data: &str) -> Vec<u8> {
    debug_assert!(!data.contains(['$', '#', '}', '*']), "{data}");
    let sum = data.bytes().fold(0u8, |s, b| s.wrapping_add(b));
    format!("${data}#{sum:02x}").into_bytes()
}

fn malformed(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("gdb server: {what}"))
}

/// A packet's payload from `body` (the bytes between `$` and `#`), its
/// checksum checked against `sum`: escapes (`}x` is `x ^ 0x20`) and
/// run-length encoding (`x*n` repeats `x` `n - 29` more times) undone.
pub fn unframe(body: &[u8], sum: [u8; 2]) -> io::Result<Vec<u8>> {
    let expected = std::str::from_utf8(&sum).ok().and_then(|s| u8::from_str_radix(s, 16).ok());
    let actual = body.iter().fold(0u8, |s, b| s.wrapping_add(*b));
    if expected != Some(actual) {
        return Err(malformed(format_args!("bad checksum on {:?}", String::from_utf8_lossy(body))));
    }
    let mut data = Vec::with_capacity(body.len());
    let mut bytes = body.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'}' => data.push(bytes.next().ok_or_else(|| malformed("escape at the end of a packet"))? ^ 0x20),
            b'*' => {
                let last = *data.last().ok_or_else(|| malformed("repeat at the start of a packet"))?;
                let count =
                    bytes.next().and_then(|n| n.checked_sub(29)).ok_or_else(|| malformed("bad repeat count"))?;
                if data.len() + usize::from(count) > MAX_PACKET {
                    return Err(malformed("packet too long"));
                }
                data.extend(std::iter::repeat_n(last, count.into()));
            }
            b => data.push(b),
        }
    }
    Ok(data)
}

/// Bytes from hex pairs (`m` replies).
pub fn hex_bytes(hex: &[u8]) -> io::Result<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).ok_or_else(|| malformed("a non-hex digit"));
    if !hex.len().is_multiple_of(2) {
        return Err(malformed("odd number of hex digits"));
    }
    hex.chunks(2).map(|pair| Ok((digit(pair[0])? << 4 | digit(pair[1])?) as u8)).collect()
}

/// A connection to a gdb server over `S`.
pub struct Client<S> {
    /// Buffered: replies are read a byte at a time. Written through
    /// `get_mut`, which leaves what is buffered alone.
    stream: BufReader<S>,
    /// Whether packets are still acknowledged with `+` (until
    /// `QStartNoAckMode`).
    acks: bool,
}

impl<S: Read + Write> Client<S> {
    /// Turns acknowledgements off, as gdb does: over a reliable stream they
    /// only cost a write per packet.
    pub fn new(stream: S) -> io::Result<Self> {
        let mut client = Self { stream: BufReader::new(stream), acks: true };
        // An old server that keeps acknowledging is handled by `receive`.
        client.acks = client.request("QStartNoAckMode")? != b"OK";
        Ok(client)
    }

    /// Sends `command` and returns the reply's payload.
    pub fn request(&mut self, command: &str) -> io::Result<Vec<u8>> {
        self.stream.get_mut().write_all(&frame(command))?;
        self.receive()
    }

    /// Sends a command that has no reply until the target stops (`c`).
    pub fn send(&mut self, command: &str) -> io::Result<()> {
        self.stream.get_mut().write_all(&frame(command))
    }

    /// Stops the running target and returns its stop reply (`T02...`).
    pub fn interrupt(&mut self) -> io::Result<Vec<u8>> {
        self.stream.get_mut().write_all(&[INTERRUPT])?;
        let reply = self.receive()?;
        match reply.first() {
            Some(b'T' | b'S') => Ok(reply),
            Some(b'W' | b'X') => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Err(malformed(format_args!("unexpected stop reply {:?}", String::from_utf8_lossy(&reply)))),
        }
    }

    /// `len` bytes of target memory at `addr`; `None` when the server
    /// cannot read them (`Exx`: unmapped).
    pub fn read_memory(&mut self, addr: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
        let reply = self.request(&format!("m{addr:x},{len:x}"))?;
        if reply.first() == Some(&b'E') {
            return Ok(None);
        }
        let bytes = hex_bytes(&reply)?;
        Ok((bytes.len() == len).then_some(bytes))
    }

    /// The next packet's payload; skips acknowledgements, and sends one
    /// while acknowledgements are on.
    fn receive(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match self.byte()? {
                b'$' => break,
                b'+' => continue,
                b'-' => return Err(malformed("our packet was refused")),
                other => return Err(malformed(format_args!("unexpected byte {other:#04x}"))),
            }
        }
        let mut body = Vec::new();
        loop {
            match self.byte()? {
                b'#' => break,
                _ if body.len() >= MAX_PACKET => return Err(malformed("packet too long")),
                b => body.push(b),
            }
        }
        let data = unframe(&body, [self.byte()?, self.byte()?])?;
        if self.acks {
            self.stream.get_mut().write_all(b"+")?;
        }
        Ok(data)
    }

    fn byte(&mut self) -> io::Result<u8> {
        let mut b = [0];
        self.stream.read_exact(&mut b)?;
        Ok(b[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_carry_their_checksum() {
        assert_eq!(frame("g"), b"$g#67");
        assert_eq!(frame("m1000,10"), b"$m1000,10#bb");
        assert_eq!(frame(""), b"$#00");
    }

    #[test]
    fn replies_are_checked_unescaped_and_expanded() {
        assert_eq!(unframe(b"OK", *b"9a").unwrap(), b"OK");
        assert_eq!(unframe(b"OK", *b"9A").unwrap(), b"OK", "either case of hex");
        assert!(unframe(b"OK", *b"9b").is_err(), "a wrong checksum");
        assert!(unframe(b"OK", *b"zz").is_err(), "a checksum that is not hex");
        // `}` escapes: `}]` is `}` (0x5d ^ 0x20 = 0x7d).
        let body = b"a}]b";
        let sum = format!("{:02x}", body.iter().fold(0u8, |s, b| s.wrapping_add(*b)));
        assert_eq!(unframe(body, sum.as_bytes().try_into().unwrap()).unwrap(), b"a}b");
        // `0* ` is `0` and 3 more (' ' is 32 = 29 + 3).
        let body = b"0* 1";
        let sum = format!("{:02x}", body.iter().fold(0u8, |s, b| s.wrapping_add(*b)));
        assert_eq!(unframe(body, sum.as_bytes().try_into().unwrap()).unwrap(), b"00001");
    }

    #[test]
    fn hostile_replies_are_errors_not_panics() {
        let checked = |body: &[u8]| {
            let sum = format!("{:02x}", body.iter().fold(0u8, |s, b| s.wrapping_add(*b)));
            unframe(body, sum.as_bytes().try_into().unwrap())
        };
        assert!(checked(b"*!").is_err(), "a repeat with nothing to repeat");
        assert!(checked(b"a*\x01").is_err(), "a repeat count below 29");
        assert!(checked(b"a*").is_err(), "a repeat without a count");
        assert!(checked(b"a}").is_err(), "a dangling escape");
        assert!(hex_bytes(b"abc").is_err());
        assert!(hex_bytes(b"zz").is_err());
        assert_eq!(hex_bytes(b"00ff7F").unwrap(), [0, 0xff, 0x7f]);
    }

    /// A scripted server: what it will send, and what it was sent.
    struct Script {
        replies: io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.replies.read(buf)
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn client(replies: &[u8]) -> Client<Script> {
        Client::new(Script { replies: io::Cursor::new(replies.to_vec()), sent: Vec::new() }).unwrap()
    }

    #[test]
    fn a_session_acknowledges_until_no_ack_mode_then_stops() {
        let mut c = client(b"+$OK#9a$T02thread:01;#04$0011ff#8e$E14#aa");
        assert_eq!(c.interrupt().unwrap(), b"T02thread:01;");
        assert_eq!(c.read_memory(0x1000, 3).unwrap(), Some(vec![0, 0x11, 0xff]));
        assert_eq!(c.read_memory(0, 8).unwrap(), None, "unmapped");
        let sent = String::from_utf8_lossy(&c.stream.get_ref().sent).into_owned();
        assert_eq!(sent, "$QStartNoAckMode#b0+\x03$m1000,3#8d$m0,8#01");
    }

    #[test]
    fn a_short_memory_reply_is_no_memory_and_garbage_is_an_error() {
        let mut c = client(b"$OK#9a$00#60");
        assert_eq!(c.read_memory(0x1000, 8).unwrap(), None);
        let mut c = client(b"$OK#9a%");
        assert!(c.request("g").is_err());
        let mut c = client(b"$OK#9a$OK#9a");
        assert!(c.interrupt().is_err(), "OK is not a stop reply");
        let mut c = client(b"$OK#9a$unterminated");
        assert_eq!(c.request("g").unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
