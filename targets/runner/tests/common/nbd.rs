//! A disk with a volatile write cache, served to QEMU over NBD
//! (`--disk nbd+unix:///?socket=PATH`), so that a test can cut the power
//! the way a real disk loses it: a flushed write is durable; a write since
//! the last flush may survive whole, torn (some of its sectors only) or not
//! at all. Sectors themselves are atomic, as disks guarantee.
//!
//! The server speaks the fixed-newstyle handshake (`NBD_OPT_GO`, `INFO`,
//! `EXPORT_NAME`) and the `READ`, `WRITE`, `FLUSH` and `DISC` commands with
//! simple replies: what QEMU's NBD client needs.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const SECTOR: usize = 512;
const NBDMAGIC: &[u8; 8] = b"NBDMAGIC";
const IHAVEOPT: &[u8; 8] = b"IHAVEOPT";
const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;
const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;
const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REP_ACK: u32 = 1;
const REP_INFO: u32 = 3;
const REP_ERR_UNSUP: u32 = (1 << 31) + 1;
const INFO_EXPORT: u16 = 0;
const INFO_BLOCK_SIZE: u16 = 3;
/// `NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH`: no FUA, so QEMU flushes instead.
const TRANSMISSION_FLAGS: u16 = 1 | 4;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const REPLY_MAGIC: u32 = 0x6744_6698;
const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
const EINVAL: u32 = 22;
/// Longest option the handshake reads (an export name and info requests).
const MAX_OPTION: usize = 4096 + 64;

/// When the disk freezes: stops answering, so that the write that froze
/// it is in flight when the test cuts the power.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freeze {
    /// At the write after this many more answered writes.
    AfterWrites(u64),
    /// At the first write after this many more batches (flushes that made
    /// two writes or more durable) and one: the moment a store typically
    /// commits what the batch prepared, such as a compaction's header.
    AfterBatches(u64),
}

/// What the power cuts did to the writes that were not flushed.
#[derive(Clone, Copy, Debug, Default)]
pub struct CutStats {
    /// Unflushed writes that reached the disk whole.
    pub kept: u64,
    /// Unflushed writes of which only some sectors reached the disk.
    pub torn: u64,
    /// Unflushed writes lost entirely.
    pub dropped: u64,
}

struct State {
    /// What survives a power cut.
    durable: Vec<u8>,
    /// What reads see: `durable` plus `unflushed`.
    current: Vec<u8>,
    /// Writes since the last flush: (byte offset, data), oldest first.
    unflushed: Vec<(usize, Vec<u8>)>,
    connections: usize,
    freeze: Option<Freeze>,
    frozen: bool,
    stats: CutStats,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

/// The disk; its server runs until the test process ends.
pub struct CachedDisk {
    socket: PathBuf,
    shared: Arc<Shared>,
}

impl CachedDisk {
    /// A zeroed disk of `size` bytes (a multiple of 512).
    pub fn new(size: usize) -> Self {
        assert_eq!(size % SECTOR, 0);
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let socket = std::env::temp_dir().join(format!("unikernel-nbd-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).expect("bind the NBD socket");
        let state = State {
            durable: vec![0; size],
            current: vec![0; size],
            unflushed: Vec::new(),
            connections: 0,
            freeze: None,
            frozen: false,
            stats: CutStats::default(),
        };
        let shared = Arc::new(Shared { state: Mutex::new(state), changed: Condvar::new() });
        let server = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                server.lock().connections += 1;
                let server = server.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &server);
                    server.lock().connections -= 1;
                    server.changed.notify_all();
                });
            }
        });
        Self { socket, shared }
    }

    /// The runner's `--disk` value for this disk.
    pub fn url(&self) -> String {
        format!("nbd+unix:///?socket={}", self.socket.display())
    }

    /// Arms a freeze: the write that triggers it reaches the cache but is
    /// never answered, and nothing after it is served. That is the moment
    /// to cut the power, which [`Self::wait_frozen`] reports.
    pub fn freeze(&self, when: Freeze) {
        self.shared.lock().freeze = Some(when);
    }

    /// Waits up to `limit` for the freeze; returns whether it came.
    pub fn wait_frozen(&self, limit: Duration) -> bool {
        let state = self.shared.lock();
        let (state, _) = self.shared.changed.wait_timeout_while(state, limit, |s| !s.frozen).unwrap();
        state.frozen
    }

    /// The power cut, once QEMU is dead: each unflushed write reaches the
    /// durable image whole, torn or not at all, chosen by `below(n)` (a
    /// random number below `n`); the next boot sees only the durable image.
    pub fn cut(&self, mut below: impl FnMut(u64) -> u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut state = self.shared.lock();
        while state.connections > 0 {
            let left =
                deadline.checked_duration_since(Instant::now()).expect("QEMU still connected 30 s after the kill");
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
        let s = &mut *state;
        for (offset, data) in std::mem::take(&mut s.unflushed) {
            let sectors = data.len().div_ceil(SECTOR);
            let keep: Vec<bool> = match below(3) {
                0 => vec![true; sectors],
                1 => vec![false; sectors],
                _ => torn(sectors, &mut below),
            };
            for (i, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
                let range = i * SECTOR..data.len().min((i + 1) * SECTOR);
                s.durable[offset + range.start..offset + range.end].copy_from_slice(&data[range]);
            }
            match keep.iter().filter(|k| **k).count() {
                0 => s.stats.dropped += 1,
                n if n == sectors => s.stats.kept += 1,
                _ => s.stats.torn += 1,
            }
        }
        s.current.clone_from(&s.durable);
        (s.freeze, s.frozen) = (None, false);
    }

    pub fn stats(&self) -> CutStats {
        self.shared.lock().stats
    }
}

impl Drop for CachedDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Which sectors of a torn write reach the disk: a random subset, and
/// never all or none of a write of several sectors.
fn torn(sectors: usize, below: &mut impl FnMut(u64) -> u64) -> Vec<bool> {
    let mut keep: Vec<bool> = (0..sectors).map(|_| below(2) == 1).collect();
    if sectors > 1 && keep.iter().all(|k| *k == keep[0]) {
        let flip = below(sectors as u64) as usize;
        keep[flip] = !keep[flip];
    }
    keep
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(b[at..at + 2].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// One client, from handshake to disconnect.
fn serve(mut stream: UnixStream, shared: &Shared) -> io::Result<()> {
    let size = shared.lock().current.len() as u64;
    handshake(&mut stream, size)?;
    loop {
        let mut request = [0; 28];
        stream.read_exact(&mut request)?;
        if u32_at(&request, 0) != REQUEST_MAGIC {
            return Err(invalid("bad request magic"));
        }
        let (kind, handle) = (u16_at(&request, 6), u64_at(&request, 8));
        let (offset, len) = (u64_at(&request, 16), u64::from(u32_at(&request, 24)));
        let in_range = offset.checked_add(len).is_some_and(|end| end <= size);
        let range = offset as usize..(offset + len) as usize;
        let mut reply = REPLY_MAGIC.to_be_bytes().to_vec();
        match kind {
            CMD_WRITE => {
                if !in_range {
                    return Err(invalid("write out of range")); // its data cannot be skipped safely
                }
                let mut data = vec![0; range.len()];
                stream.read_exact(&mut data)?;
                let mut state = shared.lock();
                state.current[range.clone()].copy_from_slice(&data);
                state.unflushed.push((range.start, data));
                match state.freeze {
                    Some(Freeze::AfterWrites(0)) => {
                        state.frozen = true;
                        shared.changed.notify_all();
                        drop(state);
                        // Never answered; QEMU waits until it is killed.
                        io::copy(&mut stream, &mut io::sink())?;
                        return Ok(());
                    }
                    Some(Freeze::AfterWrites(n)) => state.freeze = Some(Freeze::AfterWrites(n - 1)),
                    _ => {}
                }
                reply.extend(0u32.to_be_bytes());
                reply.extend(handle.to_be_bytes());
            }
            CMD_READ if in_range => {
                reply.extend(0u32.to_be_bytes());
                reply.extend(handle.to_be_bytes());
                reply.extend(&shared.lock().current[range]);
            }
            CMD_FLUSH => {
                let mut state = shared.lock();
                let s = &mut *state;
                if s.unflushed.len() >= 2 {
                    s.freeze = match s.freeze {
                        Some(Freeze::AfterBatches(0)) => Some(Freeze::AfterWrites(0)),
                        Some(Freeze::AfterBatches(n)) => Some(Freeze::AfterBatches(n - 1)),
                        other => other,
                    };
                }
                for (offset, data) in s.unflushed.drain(..) {
                    s.durable[offset..offset + data.len()].copy_from_slice(&data);
                }
                reply.extend(0u32.to_be_bytes());
                reply.extend(handle.to_be_bytes());
            }
            CMD_DISC => return Ok(()),
            _ => {
                reply.extend(EINVAL.to_be_bytes());
                reply.extend(handle.to_be_bytes());
            }
        }
        stream.write_all(&reply)?;
    }
}

/// The fixed-newstyle handshake, up to the start of transmission.
fn handshake(stream: &mut UnixStream, size: u64) -> io::Result<()> {
    let mut greeting = NBDMAGIC.to_vec();
    greeting.extend(IHAVEOPT);
    greeting.extend((FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    stream.write_all(&greeting)?;
    let mut flags = [0; 4];
    stream.read_exact(&mut flags)?;
    let no_zeroes = u32::from_be_bytes(flags) & u32::from(FLAG_NO_ZEROES) != 0;
    let export = |kind: u16| {
        let mut info = kind.to_be_bytes().to_vec();
        info.extend(size.to_be_bytes());
        info.extend(TRANSMISSION_FLAGS.to_be_bytes());
        info
    };
    loop {
        let mut head = [0; 16];
        stream.read_exact(&mut head)?;
        let (option, len) = (u32_at(&head, 8), u32_at(&head, 12) as usize);
        if &head[..8] != IHAVEOPT || len > MAX_OPTION {
            return Err(invalid("bad option"));
        }
        let mut data = vec![0; len];
        stream.read_exact(&mut data)?;
        let reply = |stream: &mut UnixStream, kind: u32, data: &[u8]| {
            let mut r = OPT_REPLY_MAGIC.to_be_bytes().to_vec();
            r.extend(option.to_be_bytes());
            r.extend(kind.to_be_bytes());
            r.extend((data.len() as u32).to_be_bytes());
            r.extend(data);
            stream.write_all(&r)
        };
        match option {
            OPT_EXPORT_NAME => {
                let mut r = export(INFO_EXPORT)[2..].to_vec();
                if !no_zeroes {
                    r.extend([0; 124]);
                }
                return stream.write_all(&r);
            }
            OPT_INFO | OPT_GO => {
                reply(stream, REP_INFO, &export(INFO_EXPORT))?;
                // Sector-sized blocks: QEMU never splits a sector, and tearing is per sector.
                let mut block = INFO_BLOCK_SIZE.to_be_bytes().to_vec();
                for n in [SECTOR as u32, 4096, 1 << 20] {
                    block.extend(n.to_be_bytes());
                }
                reply(stream, REP_INFO, &block)?;
                reply(stream, REP_ACK, &[])?;
                if option == OPT_GO {
                    return Ok(());
                }
            }
            OPT_ABORT => {
                reply(stream, REP_ACK, &[])?;
                return Err(invalid("the client aborted"));
            }
            _ => reply(stream, REP_ERR_UNSUP, &[])?,
        }
    }
}
