//! The header sector at the start of each half.
//!
//! ```text
//! 0 magic "ukkvstor" | 8 version u32 | 12 state u32 | 16 generation u64 | 24 half_bytes u64 | 32 crc u32
//! ```
//!
//! A compaction first writes the target half's header as `Compacting`
//! under a generation no header ever had, and marks it `Complete` only
//! after its records are durable: generations are never reused, so records
//! left by an aborted compaction can never be taken for a later one's.

use crate::SECTOR_SIZE;
use alloc::vec;
use alloc::vec::Vec;

const MAGIC: &[u8; 8] = b"ukkvstor";
/// The format this build reads and writes.
pub const VERSION: u32 = 2;
/// The first format (before version numbers): refused, never misread.
const V1_MAGIC: &[u8; 8] = b"ukkvhalf";
/// Smallest half: a header and a few records.
pub const MIN_SECTORS: u64 = 8;
/// Largest half accepted from a header (256 TiB): keeps every sector
/// number computed from it far from overflowing.
pub const MAX_SECTORS: u64 = 1 << 39;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// A compaction was writing into this half; not (yet) live.
    Compacting = 1,
    /// Every record of this generation is durable.
    Complete = 2,
}

/// A valid header of this format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Half {
    pub state: State,
    pub generation: u64,
    /// The half's size in sectors (the layout the store was made with).
    pub sectors: u64,
}

/// What a header sector holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    Blank,
    Store(Half),
    /// A store header of another format version.
    Unsupported(u32),
    /// Anything else (garbage, damage).
    Other,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | u64::from(u32_at(b, at + 4)) << 32
}

pub fn encode(half: Half) -> Vec<u8> {
    encode_raw(half.state as u32, half.generation, half.sectors * SECTOR_SIZE as u64)
}

/// A header with any field values (for crafted disks in tests and fuzzing).
pub fn encode_raw(state: u32, generation: u64, half_bytes: u64) -> Vec<u8> {
    let mut b = vec![0; SECTOR_SIZE];
    b[..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&state.to_le_bytes());
    b[16..24].copy_from_slice(&generation.to_le_bytes());
    b[24..32].copy_from_slice(&half_bytes.to_le_bytes());
    let crc = crc32fast::hash(&b[..32]);
    b[32..36].copy_from_slice(&crc.to_le_bytes());
    b
}

pub fn parse(b: &[u8]) -> Parsed {
    if b.iter().all(|&x| x == 0) {
        return Parsed::Blank;
    }
    if &b[..8] == V1_MAGIC && crc32fast::hash(&b[..20]).to_le_bytes() == b[20..24] {
        return Parsed::Unsupported(1);
    }
    if &b[..8] != MAGIC || crc32fast::hash(&b[..32]) != u32_at(b, 32) {
        return Parsed::Other;
    }
    let version = u32_at(b, 8);
    if version != VERSION {
        return Parsed::Unsupported(version);
    }
    let state = match u32_at(b, 12) {
        1 => State::Compacting,
        2 => State::Complete,
        _ => return Parsed::Other,
    };
    let bytes = u64_at(b, 24);
    let sectors = bytes / SECTOR_SIZE as u64;
    let sane = bytes.is_multiple_of(SECTOR_SIZE as u64) && (MIN_SECTORS..=MAX_SECTORS).contains(&sectors);
    if !sane {
        return Parsed::Other;
    }
    Parsed::Store(Half { state, generation: u64_at(b, 16), sectors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_bad_sizes_are_not_headers() {
        let half = Half { state: State::Compacting, generation: 7, sectors: 64 };
        assert_eq!(parse(&encode(half)), Parsed::Store(half));
        for bytes in [1000, u64::MAX, 0, 7 * SECTOR_SIZE as u64] {
            assert_eq!(parse(&encode_raw(2, 7, bytes)), Parsed::Other, "{bytes} bytes");
        }
        assert_eq!(parse(&encode_raw(3, 7, 64 * SECTOR_SIZE as u64)), Parsed::Other, "an unknown state");
        assert_eq!(parse(&[0; SECTOR_SIZE]), Parsed::Blank);
    }
}
