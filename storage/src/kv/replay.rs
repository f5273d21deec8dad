//! Opening: one pass over the live half, in windows, each sector read once.

use super::record::{self, Assembler, Fed, Op};
use super::{Limits, Location, Recovery, State, Store, StoreError};
use crate::{BlockDevice, SECTOR_SIZE};
use alloc::vec::Vec;

/// Sectors read at a time (128 KiB).
const WINDOW: u64 = 256;

/// Where the scan is.
struct Scan {
    generation: u64,
    end: u64,
    last_sequence: u64,
    /// The sector after the last valid record.
    last_valid_end: u64,
    /// The first record of this generation that broke after the last
    /// valid one.
    broken_at: Option<u64>,
    /// The record being checked, from its first sector.
    open: Option<(u64, Assembler)>,
}

/// Calls `f` with each sector in `from..to`, reading a window at a time.
pub(super) async fn each_sector<D: BlockDevice>(
    disk: &D,
    from: u64,
    to: u64,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut window = Vec::new();
    let mut at = from;
    while at < to {
        let sectors = WINDOW.min(to - at);
        window.resize(sectors as usize * SECTOR_SIZE, 0);
        window = disk.read(at, window).await?;
        for (sector, bytes) in (at..).zip(window.chunks_exact(SECTOR_SIZE)) {
            f(sector, bytes)?;
        }
        at += sectors;
    }
    Ok(())
}

impl<D: BlockDevice> Store<D> {
    /// Replays the live half's log into the index.
    pub(super) async fn replay(&mut self) -> Result<(), StoreError> {
        let (half, generation) = {
            let s = self.state.get_mut();
            (s.half, s.generation)
        };
        let first = self.half_start(half) + 1;
        let end = self.half_end(half);
        let mut scan = Scan { generation, end, last_sequence: 0, last_valid_end: first, broken_at: None, open: None };
        let Self { disk, state, recovery, limits, .. } = self;
        let mut replay = Replay { state: state.get_mut(), recovery, limits };
        each_sector(disk, first, end, |sector, bytes| replay.sector(&mut scan, sector, bytes)).await?;
        // A record that broke right where the log ends is a write that
        // never completed.
        recovery.torn_tail = scan.broken_at == Some(scan.last_valid_end);
        let state = state.get_mut();
        state.tail = scan.last_valid_end;
        state.last_sequence = scan.last_sequence;
        Ok(())
    }
}

/// What replay changes.
struct Replay<'a> {
    state: &'a mut State,
    recovery: &'a mut Recovery,
    limits: &'a Limits,
}

impl Replay<'_> {
    fn sector(&mut self, scan: &mut Scan, sector: u64, bytes: &[u8]) -> Result<(), StoreError> {
        if let Some((start, record)) = &mut scan.open {
            match record.feed(bytes) {
                Fed::More => return Ok(()),
                Fed::Valid => {
                    let (start, record) = scan.open.take().expect("open");
                    return self.replayed(scan, start, record);
                }
                // This sector may start the next record.
                Fed::Broken => {
                    scan.broken_at.get_or_insert(*start);
                    scan.open = None;
                }
            }
        }
        let Some(header) = record::decode(bytes) else { return Ok(()) };
        if header.generation != scan.generation || header.sequence <= scan.last_sequence {
            return Ok(());
        }
        // Longer than the half, or than values may be (a record the store
        // cannot have written under these limits): damage.
        let fits = header.sectors() <= scan.end - sector && header.value_len as usize <= self.limits.max_value;
        if !fits {
            scan.broken_at.get_or_insert(sector);
            return Ok(());
        }
        match Assembler::new(header, bytes, false) {
            (record, Fed::More) => scan.open = Some((sector, record)),
            (record, Fed::Valid) => return self.replayed(scan, sector, record),
            (_, Fed::Broken) => drop(scan.broken_at.get_or_insert(sector)),
        }
        Ok(())
    }

    /// Applies a valid record to the index.
    fn replayed(&mut self, scan: &mut Scan, start: u64, record: Assembler) -> Result<(), StoreError> {
        let h = record.header;
        if start > scan.last_valid_end {
            let skipped = (start - scan.last_valid_end) * SECTOR_SIZE as u64;
            self.recovery.damaged_bytes += skipped;
            log::warn!("kv: skipped {skipped} damaged bytes before record {}", h.sequence);
        }
        let state = &mut *self.state;
        match h.op {
            Op::Put => {
                let location = Location { sector: start, value_len: h.value_len };
                state.insert(&record.key, location, self.limits.index_bytes)?;
            }
            Op::Delete => state.remove(&record.key),
        }
        self.recovery.records += 1;
        scan.last_sequence = h.sequence;
        scan.last_valid_end = start + h.sectors();
        scan.broken_at = None;
        Ok(())
    }
}
