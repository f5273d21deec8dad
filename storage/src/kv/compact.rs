//! Compaction: the live records, with the operation that did not fit
//! folded in, copied into the other half under a new generation.

use super::half::{self, Half};
use super::record::{self, Op};
use super::{Location, State, Store, StoreError};
use crate::{BlockDevice, SECTOR_SIZE};
use alloc::vec::Vec;
use core::ops::Bound;

/// An operation on its way into the log.
#[derive(Clone, Copy)]
pub(super) struct Pending<'a> {
    pub op: Op,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

impl Pending<'_> {
    /// Records the operation in the index, its record at `sector`.
    pub fn apply_to(&self, s: &mut State, sector: u64, budget: usize) -> Result<(), StoreError> {
        match self.op {
            Op::Put => s.insert(self.key, Location { sector, value_len: self.value.len() as u32 }, budget),
            Op::Delete => {
                s.remove(self.key);
                Ok(())
            }
        }
    }
}

/// Where the copy goes.
struct Writer {
    tail: u64,
    end: u64,
    generation: u64,
    sequence: u64,
}

impl<D: BlockDevice> Store<D> {
    /// Copies the live records into the other half in key order, with
    /// `pending` applied (a put's new value instead of the old, a delete's
    /// key left out), so the operation takes effect atomically with the
    /// new header. The caller checked that the result fits.
    pub(super) async fn compact(&self, pending: Pending<'_>) -> Result<(), StoreError> {
        let (other, old_generation, generation) = {
            let s = self.state.borrow();
            (1 - s.half, s.generation, s.max_generation.checked_add(1).ok_or(StoreError::Corrupt)?)
        };
        let start = self.half_start(other);
        let header = |state| half::encode(Half { state, generation, sectors: self.half_sectors });
        // Claim the generation before any record of it exists.
        self.disk.write(start, header(half::State::Compacting)).await?;
        self.disk.flush().await?;
        self.state.borrow_mut().max_generation = generation;
        let mut w = Writer { tail: start + 1, end: self.half_end(other), generation, sequence: 0 };
        let folded = pending;
        let mut pending = Some(pending);
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            // One entry at a time: the index is never copied whole.
            let next = {
                let s = self.state.borrow();
                let from = cursor.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                s.index.range::<[u8], _>((from, Bound::Unbounded)).next().map(|(k, l)| (k.clone(), *l))
            };
            if let Some(p) = pending.filter(|p| next.as_ref().is_none_or(|(k, _)| p.key <= &k[..])) {
                pending = None;
                if p.op == Op::Put {
                    self.copy(&mut w, p.key, p.value).await?;
                }
                if next.as_ref().is_some_and(|(k, _)| k == p.key) {
                    cursor = next.map(|(k, _)| k); // the old version is replaced or deleted
                    continue;
                }
            }
            let Some((key, location)) = next else { break };
            let value = self.read_value(&key, location, old_generation).await?;
            self.copy(&mut w, &key, &value).await?;
            cursor = Some(key);
        }
        self.disk.flush().await?;
        self.disk.write(start, header(half::State::Complete)).await?;
        self.disk.flush().await?;
        let mut s = self.state.borrow_mut();
        // The caller checked the budget: this cannot fail, so the state
        // never lags behind the header just written.
        folded.apply_to(&mut s, 0, usize::MAX)?;
        // The copies went out in key order from the header on.
        let mut sector = start + 1;
        for (key, location) in s.index.iter_mut() {
            location.sector = sector;
            sector += record::sectors(key.len(), location.value_len);
        }
        debug_assert_eq!(sector, w.tail, "the index matches the copy");
        s.live_sectors = sector - (start + 1);
        s.report();
        (s.half, s.generation, s.tail, s.last_sequence) = (other, generation, sector, w.sequence);
        log::info!("kv: compacted {} records into generation {generation}", s.index.len());
        Ok(())
    }

    /// Appends one record of the copy.
    async fn copy(&self, w: &mut Writer, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        w.sequence += 1;
        let bytes = record::encode(w.generation, w.sequence, Op::Put, key, value);
        let sectors = (bytes.len() / SECTOR_SIZE) as u64;
        if w.tail + sectors > w.end {
            return Err(StoreError::Full); // the caller's check makes this unreachable
        }
        self.disk.write(w.tail, bytes).await?;
        w.tail += sectors;
        Ok(())
    }
}
