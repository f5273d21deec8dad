//! A crash-safe key-value store on a [`BlockDevice`]: a log of checksummed
//! records in one half of the disk, compacted into the other half when
//! full.
//!
//! - `put` and `delete` append one record (whole sectors) and flush before
//!   they return: an acknowledged write is durable.
//! - Every sector of a record starts with a tag the store wrote (see
//!   `record`), so no value, whatever its bytes, can be taken for a record.
//! - Each half starts with a header naming its generation and whether it
//!   is complete; the complete header with the highest generation is the
//!   live half. Compaction marks the other half `Compacting` under a
//!   generation no header ever had, copies the live records there, flushes,
//!   and only then marks it complete: a crash at any point leaves one
//!   complete generation, and an aborted copy is never mistaken for a later
//!   one.
//! - Opening scans the live half once, sector by sector: records with a
//!   valid checksum, the live generation and increasing sequence numbers
//!   count; a torn last record (a crash mid-write) is discarded; damage in
//!   the middle is skipped and reported, and the records after it are kept.
//! - Memory is bounded by [`Limits`]: the index of keys has a byte budget,
//!   values a maximum length; opening never holds more than one window of
//!   the disk and one key.
//! - Writes (`put`, `delete`, `update`) take the store's lock, a FIFO
//!   [`Mutex`]: appends never interleave, tasks are served in arrival
//!   order, and a write dropped while it waits (a `timeout`) leaves the
//!   queue without stranding the next. Share a store between tasks with
//!   `Rc<Store<_>>` (it is `!Sync`, like the single-core executor).

mod compact;
mod error;
mod half;
mod record;
mod replay;

pub use error::{Limits, Recovery, StoreError};

use crate::{BlockDevice, SECTOR_SIZE};
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::ops::Bound;
use half::{Half, Parsed};
use record::{MAX_KEY, Op};
use unikernel_core::sync::Mutex;

/// Where a value lives on the disk: its record's first sector.
#[derive(Clone, Copy, Debug)]
struct Location {
    sector: u64,
    value_len: u32,
}

struct State {
    half: u64,
    generation: u64,
    /// The highest generation any header has carried; the next compaction
    /// takes one above it.
    max_generation: u64,
    last_sequence: u64,
    /// Sector of the next record.
    tail: u64,
    index: BTreeMap<Vec<u8>, Location>,
    /// Sectors the live records take: what a compaction would copy.
    live_sectors: u64,
    /// What the index costs against [`Limits::index_bytes`].
    index_bytes: usize,
}

impl State {
    /// Records `key` at `location`, within the index budget.
    fn insert(&mut self, key: &[u8], location: Location, budget: usize) -> Result<(), StoreError> {
        let sectors = record::sectors(key.len(), location.value_len);
        if let Some(old) = self.index.get_mut(key) {
            self.live_sectors -= record::sectors(key.len(), old.value_len);
            *old = location;
        } else {
            let cost = Limits::key_cost(key.len());
            if self.index_bytes + cost > budget {
                return Err(StoreError::IndexFull { budget });
            }
            self.index.insert(key.to_vec(), location);
            self.index_bytes += cost;
        }
        self.live_sectors += sectors;
        self.report();
        Ok(())
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some(old) = self.index.remove(key) {
            self.live_sectors -= record::sectors(key.len(), old.value_len);
            self.index_bytes -= Limits::key_cost(key.len());
        }
        self.report();
    }

    /// Shows the store's size in the metrics.
    fn report(&self) {
        crate::metrics::KV_KEYS.set(self.index.len() as u64);
        crate::metrics::KV_LIVE_BYTES.set(self.live_sectors * crate::SECTOR_SIZE as u64);
    }
}

/// The key-value store.
pub struct Store<D: BlockDevice> {
    disk: D,
    limits: Limits,
    /// Sectors per half, header included (the layout the store was made with).
    half_sectors: u64,
    state: RefCell<State>,
    /// Held by every write, from its first read of the state to its last.
    lock: Mutex<()>,
    recovery: Recovery,
}

/// Writes zeros over `from..to`, a window at a time.
async fn zero<D: BlockDevice>(disk: &D, from: u64, to: u64) -> Result<(), StoreError> {
    let mut zeros = Vec::new();
    let mut at = from;
    while at < to {
        let sectors = 256.min(to - at);
        zeros.resize(sectors as usize * SECTOR_SIZE, 0);
        zeros = disk.write(at, zeros).await?;
        at += sectors;
    }
    Ok(())
}

async fn read_header<D: BlockDevice>(disk: &D, sector: u64) -> Result<Parsed, StoreError> {
    Ok(half::parse(&disk.read(sector, vec![0; SECTOR_SIZE]).await?))
}

impl<D: BlockDevice> Store<D> {
    /// Opens the store on `disk` with the default [`Limits`]: recovers a
    /// used one, formats an empty (all-zero header sectors) one, refuses
    /// anything else.
    pub async fn open(disk: D) -> Result<Self, StoreError> {
        Self::open_with(disk, Limits::default()).await
    }

    /// [`Store::open`] with other limits.
    pub async fn open_with(disk: D, limits: Limits) -> Result<Self, StoreError> {
        let first = read_header(&disk, 0).await?;
        // The layout is the one the store was made with, even if the disk
        // has been resized since.
        let half_sectors = match first {
            Parsed::Store(h) => h.sectors,
            _ => Self::disk_half(&disk)?,
        };
        let second = match half_sectors < disk.sectors() {
            true => read_header(&disk, half_sectors).await?,
            false => Parsed::Other,
        };
        let mut headers = [None; 2];
        for (slot, parsed) in headers.iter_mut().zip([first, second]) {
            match parsed {
                Parsed::Unsupported(version) => return Err(StoreError::UnsupportedFormat { version }),
                Parsed::Store(h) if h.sectors == half_sectors => *slot = Some(h),
                _ => {}
            }
        }
        let max_generation = headers.iter().flatten().map(|h| h.generation).max().unwrap_or(0);
        let live = (0..2u64)
            .zip(headers)
            .filter_map(|(half, h)| h.filter(|h| h.state == half::State::Complete).map(|h| (half, h.generation)))
            .max_by_key(|(_, generation)| *generation);
        let Some((half, generation)) = live else {
            if first == Parsed::Blank && second == Parsed::Blank {
                return Self::format_with(disk, limits).await;
            }
            return Err(StoreError::NotAStore);
        };
        let resized = Self::disk_half(&disk).ok() != Some(half_sectors);
        let mut store = Self::new(disk, limits, half_sectors, half, generation, max_generation);
        if resized {
            let made_for = 2 * half_sectors * SECTOR_SIZE as u64;
            store.recovery.resized_from = Some(made_for);
            log::warn!(
                "kv: the store was made for a {made_for}-byte disk; this one has {} sectors",
                store.disk.sectors()
            );
        }
        store.replay().await?;
        Ok(store)
    }

    /// Starts an empty store on `disk` with the default [`Limits`],
    /// whatever it held.
    pub async fn format(disk: D) -> Result<Self, StoreError> {
        Self::format_with(disk, Limits::default()).await
    }

    /// [`Store::format`] with other limits.
    pub async fn format_with(disk: D, limits: Limits) -> Result<Self, StoreError> {
        let half_sectors = Self::disk_half(&disk)?;
        // Stay above every generation any header or record on the disk
        // carries, so nothing of what was here is ever taken for current
        // (one read of the disk; formatting is rare).
        let mut seen = 0;
        replay::each_sector(&disk, 0, disk.sectors(), |_, bytes| {
            let header = match half::parse(bytes) {
                Parsed::Store(h) => Some(h.generation),
                _ => None,
            };
            let generation = record::decode(bytes).map(|h| h.generation).or(header);
            seen = seen.max(generation.unwrap_or(0));
            Ok(())
        })
        .await?;
        let generation = match seen.checked_add(1) {
            Some(generation) => generation,
            None => {
                // Every generation is taken (a crafted disk): clear it all.
                zero(&disk, 0, disk.sectors()).await?;
                1
            }
        };
        disk.write(half_sectors, vec![0; SECTOR_SIZE]).await?;
        let header = Half { state: half::State::Complete, generation, sectors: half_sectors };
        disk.write(0, half::encode(header)).await?;
        disk.flush().await?;
        let mut store = Self::new(disk, limits, half_sectors, 0, generation, generation);
        store.recovery.formatted = true;
        Ok(store)
    }

    /// The half size a store made on `disk` now would have.
    fn disk_half(disk: &D) -> Result<u64, StoreError> {
        let half = (disk.sectors() / 2).min(half::MAX_SECTORS);
        if half < half::MIN_SECTORS { Err(StoreError::TooSmall) } else { Ok(half) }
    }

    fn half_start(&self, half: u64) -> u64 {
        half * self.half_sectors
    }

    /// Where half `half` ends: its layout end, or the disk's end if the
    /// disk has shrunk.
    fn half_end(&self, half: u64) -> u64 {
        ((half + 1) * self.half_sectors).min(self.disk.sectors())
    }

    fn new(disk: D, limits: Limits, half_sectors: u64, half: u64, generation: u64, max_generation: u64) -> Self {
        let state = State {
            half,
            generation,
            max_generation,
            last_sequence: 0,
            tail: half * half_sectors + 1,
            index: BTreeMap::new(),
            live_sectors: 0,
            index_bytes: 0,
        };
        Self {
            disk,
            limits,
            half_sectors,
            state: RefCell::new(state),
            lock: Mutex::new(()),
            recovery: Recovery::default(),
        }
    }

    /// What opening found.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// The limits the store enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The value of `key`, if any.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (location, generation) = {
            let s = self.state.borrow();
            (s.index.get(key).copied(), s.generation)
        };
        match location {
            Some(l) => self.read_value(key, l, generation).await.map(Some),
            None => Ok(None),
        }
    }

    /// Reads and checks the record of `key` at `location`.
    async fn read_value(&self, key: &[u8], location: Location, generation: u64) -> Result<Vec<u8>, StoreError> {
        let sectors = record::sectors(key.len(), location.value_len) as usize;
        let bytes = self.disk.read(location.sector, vec![0; sectors * SECTOR_SIZE]).await?;
        match record::read(&bytes) {
            Some((h, k, value)) if h.generation == generation && h.op == Op::Put && k == key => Ok(value),
            _ => Err(StoreError::Corrupt),
        }
    }

    /// How many keys the store holds.
    pub fn len(&self) -> usize {
        self.state.borrow().index.len()
    }

    /// Whether the store holds no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `limit` keys in order, starting after `after` (from the first
    /// with `None`): a page, so listing never copies the whole index.
    pub fn keys_after(&self, after: Option<&[u8]>, limit: usize) -> Vec<Vec<u8>> {
        let s = self.state.borrow();
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        s.index.range::<[u8], _>((start, Bound::Unbounded)).take(limit).map(|(k, _)| k.clone()).collect()
    }

    /// Sets `key` to `value`; durable when it returns.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.apply(Op::Put, key, value).await.map(drop)
    }

    /// Removes `key`; returns whether it was there. Durable when it returns.
    pub async fn delete(&self, key: &[u8]) -> Result<bool, StoreError> {
        self.apply(Op::Delete, key, &[]).await
    }

    /// Replaces the value of `key` with `f(current value)` atomically: no
    /// other write to the store runs between the read and the write, so
    /// concurrent updates never lose one another (as `get` then `put` in
    /// several tasks would). `f` returns the new value, or `None` to delete
    /// the key; a result equal to the current value writes nothing. Returns
    /// what the key holds afterwards; durable when it returns. `f` runs
    /// once, with the lock held: keep it short and do not touch the store
    /// from it.
    ///
    /// ```no_run
    /// # use unikernel_storage::{BlockDevice, Store, StoreError};
    /// # async fn visit<D: BlockDevice>(store: &Store<D>) -> Result<(), StoreError> {
    /// // A counter: 8 bytes, little-endian, absent = 0.
    /// let count = |old: Option<&[u8]>| old.and_then(|v| v.try_into().ok()).map_or(0, u64::from_le_bytes);
    /// store.update(b"visits", |old| Some((count(old) + 1).to_le_bytes().to_vec())).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update<F>(&self, key: &[u8], f: F) -> Result<Option<Vec<u8>>, StoreError>
    where
        F: FnOnce(Option<&[u8]>) -> Option<Vec<u8>>,
    {
        self.check(key, &[])?;
        let _guard = self.lock.lock().await;
        let old = self.get(key).await?;
        let new = f(old.as_deref());
        if new != old {
            match &new {
                Some(value) => self.apply_locked(Op::Put, key, value).await?,
                None => self.apply_locked(Op::Delete, key, &[]).await?,
            };
        }
        Ok(new)
    }

    /// Refuses a bad key or a value over the limit; returns the value's length.
    fn check(&self, key: &[u8], value: &[u8]) -> Result<u32, StoreError> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(StoreError::BadKey);
        }
        let max = self.limits.max_value;
        u32::try_from(value.len()).ok().filter(|_| value.len() <= max).ok_or(StoreError::ValueTooBig { max })
    }

    /// Checks before waiting for the lock, so a bad request fails at once.
    async fn apply(&self, op: Op, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        self.check(key, value)?;
        let _guard = self.lock.lock().await;
        self.apply_locked(op, key, value).await
    }

    /// Appends one operation, compacting first only when the log has no
    /// room and the result fits; refuses at once, with no I/O, what cannot
    /// fit even after a compaction. The caller holds the lock.
    async fn apply_locked(&self, op: Op, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        let value_len = self.check(key, value)?;
        let span = record::sectors(key.len(), value_len);
        let (sequence, live_after, other) = {
            let s = self.state.borrow();
            let old = s.index.get(key).map(|l| record::sectors(key.len(), l.value_len));
            if op == Op::Delete && old.is_none() {
                return Ok(false);
            }
            let budget = self.limits.index_bytes;
            if op == Op::Put && old.is_none() && s.index_bytes + Limits::key_cost(key.len()) > budget {
                return Err(StoreError::IndexFull { budget });
            }
            let added = if op == Op::Put { span } else { 0 };
            let sequence = s.last_sequence.checked_add(1).filter(|_| s.tail + span <= self.half_end(s.half));
            (sequence, s.live_sectors - old.unwrap_or(0) + added, 1 - s.half)
        };
        let pending = compact::Pending { op, key, value };
        match sequence {
            Some(sequence) => self.append(pending, sequence).await?,
            None => {
                let (start, end) = (self.half_start(other), self.half_end(other));
                if end <= start || live_after > end - start - 1 {
                    return Err(StoreError::Full);
                }
                self.compact(pending).await?;
            }
        }
        Ok(true)
    }

    async fn append(&self, p: compact::Pending<'_>, sequence: u64) -> Result<(), StoreError> {
        let (tail, generation) = {
            let s = self.state.borrow();
            (s.tail, s.generation)
        };
        let bytes = record::encode(generation, sequence, p.op, p.key, p.value);
        let span = (bytes.len() / SECTOR_SIZE) as u64;
        self.disk.write(tail, bytes).await?;
        self.disk.flush().await?;
        let mut s = self.state.borrow_mut();
        p.apply_to(&mut s, tail, self.limits.index_bytes)?;
        s.tail += span;
        s.last_sequence = sequence;
        Ok(())
    }
}

/// Encoders of the on-disk format, for crafting disks in fuzz harnesses.
#[doc(hidden)]
pub mod raw {
    use alloc::vec::Vec;

    /// A record's sectors (a key of 1 to 1024 bytes, a value under 4 GiB).
    pub fn record(generation: u64, sequence: u64, delete: bool, key: &[u8], value: &[u8]) -> Vec<u8> {
        let op = if delete { super::Op::Delete } else { super::Op::Put };
        super::record::encode(generation, sequence, op, key, value)
    }

    /// A half header with any fields (`state` 1 compacting, 2 complete).
    pub fn half_header(state: u32, generation: u64, half_bytes: u64) -> Vec<u8> {
        super::half::encode_raw(state, generation, half_bytes)
    }
}

#[cfg(test)]
mod tests;
