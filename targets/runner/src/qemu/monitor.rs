//! QEMU's machine protocol (QMP), for opening a `--forward` once the guest
//! listens on its port (QEMU's `hostfwd_add`, which QMP offers through
//! `human-monitor-command`).
//!
//! The monitor is one end of a socket pair that QEMU inherits: no socket
//! file to clean up after a killed run, and no other process can reach it.
//! Replies are read line by line; the runner only needs to know whether a
//! command printed QEMU's error text, so no JSON parser is involved.

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

/// Bound on any reply, so a wedged QEMU cannot stall the console.
const PATIENCE: Duration = Duration::from_secs(10);

/// The runner's end of QEMU's monitor.
pub struct Monitor {
    ours: UnixStream,
    /// QEMU's end, until QEMU has it.
    theirs: Option<UnixStream>,
    /// Set once the capabilities negotiation is done.
    session: Option<Session>,
}

impl Monitor {
    /// A monitor for the QEMU `command` will start: adds its arguments and
    /// lets QEMU inherit its end of the pair.
    pub fn attach(command: &mut Command) -> io::Result<Self> {
        let (ours, theirs) = UnixStream::pair()?;
        ours.set_read_timeout(Some(PATIENCE))?;
        ours.set_write_timeout(Some(PATIENCE))?;
        let fd = theirs.as_raw_fd();
        command.args(["-chardev", &format!("socket,id=qmp,fd={fd},server=off"), "-mon", "chardev=qmp,mode=control"]);
        // `theirs` stays open until `spawned`, which follows QEMU's start.
        super::inherit(command, fd);
        Ok(Self { ours, theirs: Some(theirs), session: None })
    }

    /// QEMU runs and holds its end: the runner's copy closes, so that
    /// QEMU's exit ends the conversation.
    pub fn spawned(&mut self) {
        self.theirs = None;
    }

    /// Runs a human monitor command and returns QMP's reply line, which
    /// holds what the command printed. `command` must not need JSON
    /// escaping (the runner's are letters, digits and `:.-`).
    pub fn human(&mut self, command: &str) -> io::Result<String> {
        debug_assert!(!command.contains(['"', '\\']), "{command}");
        self.execute(&format!(r#"{{"execute":"human-monitor-command","arguments":{{"command-line":"{command}"}}}}"#))
    }

    /// Runs a QMP `request` (one line of JSON) and returns its `return` line.
    pub fn execute(&mut self, request: &str) -> io::Result<String> {
        let session = match &mut self.session {
            Some(session) => session,
            None => self.session.insert(Session::start(&self.ours)?),
        };
        session.execute(request)
    }
}

/// A monitor past QMP's greeting and capabilities negotiation.
struct Session {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Session {
    fn start(stream: &UnixStream) -> io::Result<Self> {
        let mut session = Self { reader: BufReader::new(stream.try_clone()?), writer: stream.try_clone()? };
        session.line()?; // the greeting
        session.execute(r#"{"execute":"qmp_capabilities"}"#)?;
        Ok(session)
    }

    fn execute(&mut self, request: &str) -> io::Result<String> {
        self.writer.write_all(format!("{request}\n").as_bytes())?;
        loop {
            let line = self.line()?;
            // Asynchronous events may come first; the answer is `return` or `error`.
            if line.starts_with(r#"{"return""#) {
                return Ok(line);
            }
            if line.starts_with(r#"{"error""#) {
                return Err(io::Error::other(line));
            }
        }
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line)? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Ok(line),
        }
    }
}
