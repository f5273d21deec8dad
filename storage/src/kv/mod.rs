//! A crash-safe key-value store on a [`BlockDevice`]: a log of checksummed
//! records in one half of the disk, compacted into the other half when
//! full.
//!
//! - `put` and `delete` append one record (whole sectors) and flush before
//!   they return: an acknowledged write is durable.
//! - Each half starts with a header sector naming its generation; the
//!   valid header with the highest generation is the live half. Compaction
//!   copies the live records into the other half, flushes, and only then
//!   writes that half's header: a crash at any point leaves one complete
//!   generation.
//! - Opening scans the live half: records with a valid checksum, the live
//!   generation and increasing sequence numbers count; a torn last record
//!   (a crash mid-write) is discarded; damage in the middle is skipped and
//!   reported, and the records after it are kept.

mod lock;
mod record;

use crate::{BlockDevice, BlockError, SECTOR_SIZE};
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;
use record::{HEADER, MAX_KEY, Op};

const HALF_MAGIC: &[u8; 8] = b"ukkvhalf";
/// Bytes the scan reads at a time.
const WINDOW: usize = 128 * 1024;

/// Why a store operation failed.
#[derive(Debug, PartialEq, Eq)]
pub enum StoreError {
    Block(BlockError),
    /// The disk holds neither an empty disk nor a store (use `format`).
    NotAStore,
    /// The live records and the new one do not fit in half the disk.
    Full,
    /// Keys are 1 to 1024 bytes.
    BadKey,
    /// The disk is too small for a store (fewer than 16 sectors).
    TooSmall,
    /// The disk's size differs from the one the store was made for (a
    /// truncated or resized image); sizes in bytes.
    Resized {
        made_for: u64,
        now: u64,
    },
}

impl From<BlockError> for StoreError {
    fn from(e: BlockError) -> Self {
        Self::Block(e)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Block(e) => write!(f, "disk: {e}"),
            Self::NotAStore => f.write_str("the disk holds no store and is not empty (format it to start over)"),
            Self::Full => f.write_str("the store is full"),
            Self::BadKey => f.write_str("keys are 1 to 1024 bytes"),
            Self::TooSmall => f.write_str("the disk is too small for a store"),
            Self::Resized { made_for, now } => {
                write!(
                    f,
                    "the store was made for a {made_for}-byte disk, this one has {now} bytes (truncated or resized image)"
                )
            }
        }
    }
}

impl core::error::Error for StoreError {}

/// What opening found on the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Valid records replayed.
    pub records: u64,
    /// Bytes skipped between valid records (damage).
    pub damaged_bytes: u64,
    /// Whether a record after the last valid one was cut short (a crash
    /// during a write that was never acknowledged).
    pub torn_tail: bool,
    /// Whether the store was just formatted (an empty disk, or `format`).
    pub formatted: bool,
    /// The disk size in bytes the store was made for, when the disk now
    /// has another (a truncated or resized image): the store keeps its
    /// layout and recovers what is still on the disk.
    pub resized_from: Option<u64>,
}

/// Where a value lives on the disk.
#[derive(Clone, Copy, Debug)]
struct Location {
    offset: u64,
    len: usize,
}

struct State {
    half: u64,
    generation: u32,
    next_sequence: u64,
    /// Byte offset of the next record.
    tail: u64,
    index: BTreeMap<Vec<u8>, Location>,
}

/// The key-value store.
pub struct Store<D: BlockDevice> {
    disk: D,
    half_bytes: u64,
    state: RefCell<State>,
    lock: lock::Lock,
    recovery: Recovery,
}

/// A half's header: magic, generation, the half's size, CRC.
fn half_header(generation: u32, half_bytes: u64) -> Vec<u8> {
    let mut b = vec![0; SECTOR_SIZE];
    b[..8].copy_from_slice(HALF_MAGIC);
    b[8..12].copy_from_slice(&generation.to_le_bytes());
    b[12..20].copy_from_slice(&half_bytes.to_le_bytes());
    let crc = crc32fast::hash(&b[..20]);
    b[20..24].copy_from_slice(&crc.to_le_bytes());
    b
}

/// The generation and half size of a valid header.
fn parse_half_header(b: &[u8]) -> Option<(u32, u64)> {
    let ok = &b[..8] == HALF_MAGIC && crc32fast::hash(&b[..20]).to_le_bytes() == b[20..24];
    let field = |r: core::ops::Range<usize>| b[r].iter().rev().fold(0u64, |n, &x| n << 8 | u64::from(x));
    ok.then(|| (field(8..12) as u32, field(12..20)))
}

impl<D: BlockDevice> Store<D> {
    /// Opens the store on `disk`: recovers a used one, formats an empty
    /// (all-zero header sectors) one, refuses anything else.
    pub async fn open(disk: D) -> Result<Self, StoreError> {
        let disk_bytes = disk.sectors() * SECTOR_SIZE as u64;
        let mut sector = disk.read(0, vec![0; SECTOR_SIZE]).await?;
        let first = parse_half_header(&sector);
        let mut blank = sector.iter().all(|&x| x == 0);
        // The layout is the one the store was made with, even if the disk
        // has been resized since.
        let half_bytes = match first {
            Some((_, half)) => half,
            None => Self::half_bytes(&disk)?,
        };
        let second = if half_bytes + SECTOR_SIZE as u64 <= disk_bytes {
            sector = disk.read(half_bytes / SECTOR_SIZE as u64, sector).await?;
            blank &= sector.iter().all(|&x| x == 0);
            parse_half_header(&sector).filter(|(_, half)| *half == half_bytes)
        } else {
            None
        };
        let live = [first, second]
            .iter()
            .enumerate()
            .filter_map(|(h, g)| g.map(|(g, _)| (h as u64, g)))
            .max_by_key(|(_, g)| *g);
        let Some((half, generation)) = live else {
            if !blank {
                return Err(StoreError::NotAStore);
            }
            return Self::format(disk).await;
        };
        let resized = Self::half_bytes(&disk).ok() != Some(half_bytes);
        let mut store = Self::empty(disk, half_bytes, half, generation);
        if resized {
            store.recovery.resized_from = Some(2 * half_bytes);
            log::warn!("kv: the store was made for a {}-byte disk; this one has {disk_bytes} bytes", 2 * half_bytes);
        }
        store.replay().await?;
        Ok(store)
    }

    /// Starts an empty store on `disk`, whatever it held.
    pub async fn format(disk: D) -> Result<Self, StoreError> {
        let half_bytes = Self::half_bytes(&disk)?;
        let old = half_bytes / SECTOR_SIZE as u64; // the other half's header
        disk.write(old, vec![0; SECTOR_SIZE]).await?;
        disk.write(0, half_header(1, half_bytes)).await?;
        disk.flush().await?;
        let mut store = Self::empty(disk, half_bytes, 0, 1);
        store.recovery.formatted = true;
        Ok(store)
    }

    /// Where half `half` ends: its layout end, or the disk's end if the
    /// disk has shrunk.
    fn half_end(&self, half: u64) -> u64 {
        ((half + 1) * self.half_bytes).min(self.disk.sectors() * SECTOR_SIZE as u64)
    }

    fn half_bytes(disk: &D) -> Result<u64, StoreError> {
        let half = disk.sectors() / 2 * SECTOR_SIZE as u64;
        if half < 8 * SECTOR_SIZE as u64 { Err(StoreError::TooSmall) } else { Ok(half) }
    }

    fn empty(disk: D, half_bytes: u64, half: u64, generation: u32) -> Self {
        let state = State {
            half,
            generation,
            next_sequence: 1,
            tail: half * half_bytes + SECTOR_SIZE as u64,
            index: BTreeMap::new(),
        };
        Self {
            disk,
            half_bytes,
            state: RefCell::new(state),
            lock: lock::Lock::default(),
            recovery: Recovery::default(),
        }
    }

    /// What opening found.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// Reads `len` bytes at byte `offset` (any alignment).
    async fn read_bytes(&self, offset: u64, len: usize) -> Result<Vec<u8>, StoreError> {
        let first = offset / SECTOR_SIZE as u64;
        let skip = (offset % SECTOR_SIZE as u64) as usize;
        let mut b = self.disk.read(first, vec![0; (skip + len).next_multiple_of(SECTOR_SIZE)]).await?;
        b.drain(..skip);
        b.truncate(len);
        Ok(b)
    }

    /// Replays the live half's log into the index.
    async fn replay(&mut self) -> Result<(), StoreError> {
        let (half, generation) = {
            let s = self.state.get_mut();
            (s.half, s.generation)
        };
        let end = self.half_end(half);
        let mut offset = half * self.half_bytes + SECTOR_SIZE as u64;
        let (mut last_sequence, mut last_valid_end) = (0, offset);
        let mut window: (u64, Vec<u8>) = (0, Vec::new());
        while offset < end {
            if !(window.0..window.0 + window.1.len() as u64).contains(&offset) {
                let len = WINDOW.min((end - offset) as usize);
                window = (offset, self.read_bytes(offset, len).await?);
            }
            let at = (offset - window.0) as usize;
            let header = record::decode(&window.1[at..], (end - offset) as usize)
                .filter(|h| h.generation == generation && h.sequence > last_sequence);
            let valid = match header {
                Some(h) => {
                    let body_len = h.key_len + h.value_len;
                    let body = match window.1.get(at + HEADER..at + HEADER + body_len) {
                        Some(body) => body.to_vec(),
                        None => self.read_bytes(offset + HEADER as u64, body_len).await?,
                    };
                    h.matches(&window.1[at..], &body).then_some((h, body))
                }
                None => None,
            };
            let Some((h, body)) = valid else {
                offset += SECTOR_SIZE as u64;
                continue;
            };
            if offset > last_valid_end {
                self.recovery.damaged_bytes += offset - last_valid_end;
                log::warn!("kv: skipped {} damaged bytes before record {}", offset - last_valid_end, h.sequence);
            }
            let key = body[..h.key_len].to_vec();
            let state = self.state.get_mut();
            match h.op {
                Op::Put => drop(
                    state
                        .index
                        .insert(key, Location { offset: offset + (HEADER + h.key_len) as u64, len: h.value_len }),
                ),
                Op::Delete => drop(state.index.remove(&key)),
            }
            self.recovery.records += 1;
            last_sequence = h.sequence;
            offset += h.span() as u64;
            last_valid_end = offset;
        }
        // Anything but zeros right after the last record is a write that
        // never completed.
        if last_valid_end < end {
            let next = self.read_bytes(last_valid_end, SECTOR_SIZE).await?;
            self.recovery.torn_tail = next.iter().any(|&b| b != 0);
        }
        let state = self.state.get_mut();
        state.tail = last_valid_end;
        state.next_sequence = last_sequence + 1;
        Ok(())
    }

    /// The value of `key`, if any.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let location = self.state.borrow().index.get(key).copied();
        match location {
            Some(l) => Ok(Some(self.read_bytes(l.offset, l.len).await?)),
            None => Ok(None),
        }
    }

    /// The keys, in order.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        self.state.borrow().index.keys().cloned().collect()
    }

    /// Sets `key` to `value`; durable when it returns.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.append(Op::Put, key, value).await
    }

    /// Removes `key`; returns whether it was there. Durable when it returns.
    pub async fn delete(&self, key: &[u8]) -> Result<bool, StoreError> {
        if !self.state.borrow().index.contains_key(key) {
            return Ok(false);
        }
        self.append(Op::Delete, key, &[]).await.map(|()| true)
    }

    async fn append(&self, op: Op, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(StoreError::BadKey);
        }
        let _guard = self.lock.lock().await;
        let span = (HEADER + key.len() + value.len()).next_multiple_of(SECTOR_SIZE) as u64;
        if self.room() < span {
            self.compact().await?;
            if self.room() < span {
                return Err(StoreError::Full);
            }
        }
        let (tail, bytes) = {
            let s = self.state.borrow();
            (s.tail, record::encode(s.generation, s.next_sequence, op, key, value))
        };
        self.disk.write(tail / SECTOR_SIZE as u64, bytes).await?;
        self.disk.flush().await?;
        let mut s = self.state.borrow_mut();
        match op {
            Op::Put => drop(
                s.index.insert(key.to_vec(), Location { offset: tail + (HEADER + key.len()) as u64, len: value.len() }),
            ),
            Op::Delete => drop(s.index.remove(key)),
        }
        s.tail += span;
        s.next_sequence += 1;
        Ok(())
    }

    fn room(&self) -> u64 {
        let s = self.state.borrow();
        self.half_end(s.half).saturating_sub(s.tail)
    }

    /// Copies the live records into the other half under the next
    /// generation; the header goes last, so a crash leaves the old half live.
    async fn compact(&self) -> Result<(), StoreError> {
        let (half, generation, entries) = {
            let s = self.state.borrow();
            (1 - s.half, s.generation + 1, s.index.iter().map(|(k, l)| (k.clone(), *l)).collect::<Vec<_>>())
        };
        let mut tail = half * self.half_bytes + SECTOR_SIZE as u64;
        let end = self.half_end(half);
        if tail >= end {
            return Err(StoreError::Full); // the other half is gone (a shrunk disk)
        }
        let mut index = BTreeMap::new();
        for (sequence, (key, location)) in (1..).zip(entries) {
            let value = self.read_bytes(location.offset, location.len).await?;
            let bytes = record::encode(generation, sequence, Op::Put, &key, &value);
            if tail + bytes.len() as u64 > end {
                return Err(StoreError::Full);
            }
            let len = bytes.len() as u64;
            self.disk.write(tail / SECTOR_SIZE as u64, bytes).await?;
            index.insert(key.clone(), Location { offset: tail + (HEADER + key.len()) as u64, len: value.len() });
            tail += len;
        }
        if tail < end {
            // The old contents after the copied records must not read as a torn tail.
            self.disk.write(tail / SECTOR_SIZE as u64, vec![0; SECTOR_SIZE]).await?;
        }
        self.disk.flush().await?;
        self.disk.write(half * self.half_bytes / SECTOR_SIZE as u64, half_header(generation, self.half_bytes)).await?;
        self.disk.flush().await?;
        let mut s = self.state.borrow_mut();
        log::info!("kv: compacted {} records into generation {generation}", index.len());
        s.next_sequence = index.len() as u64 + 1;
        *s = State { half, generation, next_sequence: s.next_sequence, tail, index };
        Ok(())
    }
}

#[cfg(test)]
mod tests;
