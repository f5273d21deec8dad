//! `--profile FILE`: samples where the guest's CPU time goes and writes a
//! flame graph of it when the guest exits.
//!
//! QEMU's gdb server does the sampling, so the guest needs nothing built in
//! and it works under TCG: at a fixed rate a thread interrupts the guest,
//! reads its instruction and frame pointers (`g`), follows the frame-pointer
//! chain (images are built with `force-frame-pointers`) with memory reads,
//! and lets it continue. The guest's clocks stand still while it is
//! stopped, so what it measures is not bent by the sampling.
//!
//! The gdb server's connection is one end of a socket pair that QEMU
//! inherits, as the monitor's (`qemu::monitor`): no port to pick or to
//! collide with, and no other process can reach it.

mod flame;

use crate::rsp::{self, Client};
use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use flame::write;

/// Samples per second when `--profile-hz` is not given, as Go's pprof:
/// under TCG a sample (interrupt, registers, a dozen frames) holds the
/// guest 0.2–0.5 ms here, so this slows it by about 5%. Sampling keeps up
/// to about 900 per second (the guest then runs at three quarters speed).
pub const DEFAULT_HZ: u32 = 100;
/// Frames followed per sample: deeper stacks are cut (the flame graph shows
/// their innermost frames under a cut root).
const MAX_DEPTH: usize = 128;
/// Bound on any reply, so that a wedged QEMU cannot hold up the runner.
const PATIENCE: Duration = Duration::from_secs(10);

/// A call stack: the instruction pointer, then the return addresses, innermost first.
pub type Stack = Vec<u64>;

/// What a run's sampling found.
#[derive(Debug, Default)]
pub struct Profile {
    /// How often each distinct stack was seen.
    pub stacks: HashMap<Stack, u64>,
    /// From the first sample's start to the last's end.
    pub elapsed: Duration,
    /// Time the guest was held for sampling.
    pub held: Duration,
    /// Why sampling ended before the runner stopped it, other than QEMU's exit.
    pub error: Option<String>,
}

impl Profile {
    pub fn samples(&self) -> u64 {
        self.stacks.values().sum()
    }
}

/// A sampler attached to the QEMU command about to start.
pub struct Profiler {
    /// QEMU's end of the pair, kept open until QEMU has exited: dropping it
    /// earlier would close the connection for a QEMU not yet started.
    theirs: UnixStream,
    stop: Arc<AtomicBool>,
    sampler: JoinHandle<Profile>,
}

impl Profiler {
    /// Adds QEMU's gdb server on a socket pair to `command` and starts
    /// sampling at `hz`; return addresses outside `code` end a stack walk.
    pub fn attach(command: &mut Command, hz: u32, code: Range<u64>) -> io::Result<Self> {
        let (ours, theirs) = UnixStream::pair()?;
        ours.set_read_timeout(Some(PATIENCE))?;
        ours.set_write_timeout(Some(PATIENCE))?;
        let fd = theirs.as_raw_fd();
        // No `-S`: the guest runs at once (QEMU pauses it while the
        // connection opens; the sampler continues it).
        command.args(["-chardev", &format!("socket,id=gdb0,fd={fd},server=off"), "-gdb", "chardev:gdb0"]);
        // `theirs` stays open until `finish`, which follows QEMU's exit.
        crate::qemu::inherit(command, fd);
        let stop = Arc::new(AtomicBool::new(false));
        let period = Duration::from_secs(1) / hz.max(1);
        let stopped = stop.clone();
        let sampler = std::thread::spawn(move || sample(ours, period, &code, &stopped));
        Ok(Self { theirs, stop, sampler })
    }

    /// Call once QEMU has exited: ends the sampling and returns what it found.
    pub fn finish(self) -> Profile {
        self.stop.store(true, Ordering::Relaxed);
        // The sampler's reads now end (QEMU's copy closed with QEMU).
        drop(self.theirs);
        self.sampler
            .join()
            .unwrap_or_else(|_| Profile { error: Some("the sampler panicked".into()), ..Profile::default() })
    }
}

/// Samples until `stop` or until the connection ends (QEMU exited).
fn sample(stream: UnixStream, period: Duration, code: &Range<u64>, stop: &AtomicBool) -> Profile {
    let mut profile = Profile::default();
    let start = Instant::now();
    if let Err(e) = sample_into(&mut profile, stream, period, code, stop)
        && !matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        )
        && !stop.load(Ordering::Relaxed)
    {
        profile.error = Some(e.to_string());
    }
    profile.elapsed = start.elapsed();
    profile
}

fn sample_into(
    profile: &mut Profile,
    stream: UnixStream,
    period: Duration,
    code: &Range<u64>,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut gdb = Client::new(stream)?;
    gdb.send("c")?;
    let mut next = Instant::now() + period;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let stopped = Instant::now();
        gdb.interrupt()?;
        let (rip, rbp) = registers(&gdb.request("g")?)?;
        let stack = walk(rip, rbp, code, |at| {
            let frame = gdb.read_memory(at, 16)?;
            Ok(frame.map(|f| (word(&f[..8]), word(&f[8..]))))
        })?;
        *profile.stacks.entry(stack).or_default() += 1;
        gdb.send("c")?;
        let (now, held) = (Instant::now(), stopped.elapsed());
        profile.held += held;
        // The guest runs at least as long as it was held: a rate beyond
        // what sampling can keep up with halves its speed, not starves it.
        next = (next + period).max(now + held);
    }
    Ok(())
}

fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

/// rip and rbp from a `g` reply: x86_64's registers in gdb's order (rax,
/// rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8–r15, rip, ...), 8 bytes each,
/// little-endian, as hex.
fn registers(reply: &[u8]) -> io::Result<(u64, u64)> {
    const RBP: usize = 6;
    const RIP: usize = 16;
    let hex = |i: usize| -> io::Result<u64> {
        let digits = reply.get(i * 16..(i + 1) * 16).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("gdb server: a {}-byte register reply", reply.len()))
        })?;
        Ok(word(&rsp::hex_bytes(digits)?))
    };
    Ok((hex(RIP)?, hex(RBP)?))
}

/// The call stack at `rip` with frame pointer `rbp`; `frame(rbp)` reads a
/// frame's saved rbp and return address (`None`: unreadable). The guest's
/// memory is untrusted: the walk stops at a null, misaligned or unreadable
/// frame, a return address outside `code`, a frame that is not above the
/// last (stacks grow down, so a loop cannot go on), or at [`MAX_DEPTH`].
pub fn walk(
    rip: u64,
    mut rbp: u64,
    code: &Range<u64>,
    mut frame: impl FnMut(u64) -> io::Result<Option<(u64, u64)>>,
) -> io::Result<Stack> {
    let mut stack = vec![rip];
    while stack.len() < MAX_DEPTH && rbp != 0 && rbp.is_multiple_of(8) {
        let Some((caller_rbp, return_address)) = frame(rbp)? else { break };
        if !code.contains(&return_address) {
            break;
        }
        stack.push(return_address);
        if caller_rbp <= rbp {
            break;
        }
        rbp = caller_rbp;
    }
    Ok(stack)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: Range<u64> = 0x10_0000..0x20_0000;

    /// Frames of a fake stack: rbp -> (caller's rbp, return address).
    fn walk_frames(rip: u64, rbp: u64, frames: &[(u64, (u64, u64))]) -> Stack {
        let map: HashMap<u64, (u64, u64)> = frames.iter().copied().collect();
        walk(rip, rbp, &CODE, |at| Ok(map.get(&at).copied())).unwrap()
    }

    #[test]
    fn a_frame_pointer_chain_is_followed_to_its_end() {
        let frames = [(0x8000, (0x8040, 0x10_1000)), (0x8040, (0x8100, 0x10_2000)), (0x8100, (0, 0x10_3000))];
        assert_eq!(walk_frames(0x10_0500, 0x8000, &frames), [0x10_0500, 0x10_1000, 0x10_2000, 0x10_3000]);
    }

    #[test]
    fn a_hostile_chain_ends() {
        // A frame pointing at itself, and two pointing at each other.
        assert_eq!(walk_frames(0x10_0500, 0x8000, &[(0x8000, (0x8000, 0x10_1000))]).len(), 2);
        let pair = [(0x8000, (0x8040, 0x10_1000)), (0x8040, (0x8000, 0x10_2000))];
        assert_eq!(walk_frames(0x10_0500, 0x8000, &pair).len(), 3);
        // Misaligned, unreadable, or returning outside the image's code.
        assert_eq!(walk_frames(0x10_0500, 0x8001, &[(0x8001, (0, 0x10_1000))]), [0x10_0500]);
        assert_eq!(walk_frames(0x10_0500, 0x8000, &[]), [0x10_0500]);
        assert_eq!(walk_frames(0x10_0500, 0x8000, &[(0x8000, (0x8040, 0xdead_0000))]), [0x10_0500]);
        // An endless chain going up is cut at the bound.
        let mut n = 0;
        let endless = walk(0x10_0500, 0x8000, &CODE, |at| {
            n += 1;
            Ok(Some((at + 16, 0x10_1000)))
        });
        assert_eq!((endless.unwrap().len(), n), (MAX_DEPTH, MAX_DEPTH - 1));
    }

    #[test]
    fn a_read_error_ends_the_walk_with_the_error() {
        let failed = walk(0x10_0500, 0x8000, &CODE, |_| Err(io::ErrorKind::UnexpectedEof.into()));
        assert_eq!(failed.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn registers_come_from_their_places_in_the_g_reply() {
        let mut reply = String::new();
        for i in 0..24u64 {
            reply += &rsp_hex(0x1111_0000_0000_0000 + i);
        }
        assert_eq!(registers(reply.as_bytes()).unwrap(), (0x1111_0000_0000_0010, 0x1111_0000_0000_0006));
        assert!(registers(&reply.as_bytes()[..16 * 16]).is_err(), "too short for rip");
        assert!(registers(b"zz").is_err());
    }

    fn rsp_hex(value: u64) -> String {
        value.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}
