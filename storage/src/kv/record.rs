//! The on-disk record: whole sectors, each starting with a tag the store
//! wrote, so the bytes of a key or value never sit at the start of a
//! sector and can never be taken for a record, whatever they contain.
//!
//! ```text
//! first sector:  0 START u32 | 4 generation u64 | 12 sequence u64 | 20 key_len u16
//!                22 op u8 | 23 0 | 24 value_len u32 | 28 crc u32 | 32 payload...
//! other sectors: 0 CONT u32 | 4 payload...
//! ```
//!
//! The payload is the key then the value, cut across the sectors; the
//! padding of the last sector is zeros. A CRC-32 over the first 28 header
//! bytes and the payload makes a torn or damaged record detectable; the
//! generation keeps records of an older use of the same space from being
//! taken for current ones.

use crate::SECTOR_SIZE;
use alloc::vec::Vec;

const START: u32 = u32::from_le_bytes(*b"ukR2");
const CONT: u32 = u32::from_le_bytes(*b"ukC2");
const HEADER: usize = 32;
const TAG: usize = 4;
/// Payload bytes in the first sector and in each later one.
const FIRST_PAYLOAD: usize = SECTOR_SIZE - HEADER;
const NEXT_PAYLOAD: usize = SECTOR_SIZE - TAG;
/// Longest key accepted.
pub const MAX_KEY: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Put = 1,
    Delete = 2,
}

/// Sectors a record with these lengths takes on disk.
pub fn sectors(key_len: usize, value_len: u32) -> u64 {
    let payload = key_len as u64 + u64::from(value_len);
    1 + payload.saturating_sub(FIRST_PAYLOAD as u64).div_ceil(NEXT_PAYLOAD as u64)
}

/// A decoded first-sector header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub generation: u64,
    pub sequence: u64,
    pub op: Op,
    pub key_len: usize,
    pub value_len: u32,
    crc: u32,
}

impl Header {
    /// Sectors the record takes on disk.
    pub fn sectors(&self) -> u64 {
        sectors(self.key_len, self.value_len)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | u64::from(u32_at(b, at + 4)) << 32
}

/// Parses the first sector of a record; `None` for any sector the store
/// did not write as a record start (zeros, garbage, a continuation).
pub fn decode(sector: &[u8]) -> Option<Header> {
    if sector.len() < SECTOR_SIZE || u32_at(sector, 0) != START || sector[23] != 0 {
        return None;
    }
    let op = match sector[22] {
        1 => Op::Put,
        2 => Op::Delete,
        _ => return None,
    };
    let key_len = usize::from(u16::from_le_bytes([sector[20], sector[21]]));
    let value_len = u32_at(sector, 24);
    let valid = (1..=MAX_KEY).contains(&key_len) && (op == Op::Put || value_len == 0);
    valid.then(|| Header {
        generation: u64_at(sector, 4),
        sequence: u64_at(sector, 12),
        op,
        key_len,
        value_len,
        crc: u32_at(sector, 28),
    })
}

/// The record's bytes on disk.
pub fn encode(generation: u64, sequence: u64, op: Op, key: &[u8], value: &[u8]) -> Vec<u8> {
    let value_len = u32::try_from(value.len()).expect("values are limited far below 4 GiB");
    let total = sectors(key.len(), value_len) as usize * SECTOR_SIZE;
    let mut b = Vec::with_capacity(total);
    b.extend_from_slice(&START.to_le_bytes());
    b.extend_from_slice(&generation.to_le_bytes());
    b.extend_from_slice(&sequence.to_le_bytes());
    b.extend_from_slice(&(key.len() as u16).to_le_bytes());
    b.extend_from_slice(&[op as u8, 0]);
    b.extend_from_slice(&value_len.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&b);
    crc.update(key);
    crc.update(value);
    b.extend_from_slice(&crc.finalize().to_le_bytes());
    let mut payload = key.iter().chain(value).copied();
    b.extend(payload.by_ref().take(FIRST_PAYLOAD));
    while b.len() < total {
        b.resize(b.len().next_multiple_of(SECTOR_SIZE), 0);
        b.extend_from_slice(&CONT.to_le_bytes());
        b.extend(payload.by_ref().take(NEXT_PAYLOAD));
    }
    b.resize(total, 0);
    b
}

/// What feeding a sector to an [`Assembler`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Fed {
    /// The record goes on in the next sector.
    More,
    /// The record is whole and its checksum matches.
    Valid,
    /// The record is damaged or torn: a bad checksum, or a sector that is
    /// not its continuation (which may itself start another record).
    Broken,
}

/// Checks a record sector by sector, keeping its key (and its value when
/// asked), so a scan never holds more than one sector of it.
pub struct Assembler {
    pub header: Header,
    crc: crc32fast::Hasher,
    seen: u64,
    pub key: Vec<u8>,
    /// The value, when collected.
    pub value: Option<Vec<u8>>,
}

impl Assembler {
    /// Starts on a record's first sector (whose header is `header`).
    pub fn new(header: Header, first: &[u8], collect_value: bool) -> (Self, Fed) {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&first[..28]);
        let value = collect_value.then(|| Vec::with_capacity(header.value_len as usize));
        let mut a = Self { header, crc, seen: 0, key: Vec::with_capacity(header.key_len), value };
        let fed = a.take(&first[HEADER..]);
        (a, fed)
    }

    /// Feeds the next sector on the disk.
    pub fn feed(&mut self, sector: &[u8]) -> Fed {
        if u32_at(sector, 0) != CONT {
            return Fed::Broken;
        }
        self.take(&sector[TAG..])
    }

    fn take(&mut self, payload: &[u8]) -> Fed {
        let total = self.header.key_len as u64 + u64::from(self.header.value_len);
        let n = payload.len().min((total - self.seen) as usize);
        let payload = &payload[..n];
        self.crc.update(payload);
        let key_left = self.header.key_len.saturating_sub(self.key.len()).min(n);
        self.key.extend_from_slice(&payload[..key_left]);
        if let Some(value) = &mut self.value {
            value.extend_from_slice(&payload[key_left..]);
        }
        self.seen += n as u64;
        if self.seen < total {
            Fed::More
        } else if self.crc.clone().finalize() == self.header.crc {
            Fed::Valid
        } else {
            Fed::Broken
        }
    }
}

/// Checks a whole record read from the disk and returns its key and value.
pub fn read(bytes: &[u8]) -> Option<(Header, Vec<u8>, Vec<u8>)> {
    let mut sectors = bytes.chunks_exact(SECTOR_SIZE);
    let first = sectors.next()?;
    let (mut a, mut fed) = Assembler::new(decode(first)?, first, true);
    while fed == Fed::More {
        fed = a.feed(sectors.next()?);
    }
    (fed == Fed::Valid).then(|| (a.header, a.key, a.value.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_tags_every_sector_and_damage_is_detected() {
        let value: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
        let b = encode(3, 42, Op::Put, b"key", &value);
        assert_eq!(b.len(), sectors(3, 2000) as usize * SECTOR_SIZE);
        for (i, sector) in b.chunks(SECTOR_SIZE).enumerate() {
            assert_eq!(decode(sector).is_some(), i == 0, "only the first sector starts a record");
        }
        let (h, key, got) = read(&b).expect("a valid record");
        assert_eq!((h.generation, h.sequence, h.op, &key[..], &got[..]), (3, 42, Op::Put, &b"key"[..], &value[..]));
        let mut bad = b.clone();
        bad[SECTOR_SIZE + 100] ^= 1; // one bit of the value
        assert_eq!(read(&bad), None);
        assert_eq!(decode(&[0; SECTOR_SIZE]), None, "zeros are not a record");
        assert_eq!(sectors(1, 479), 1);
        assert_eq!(sectors(1, 480), 2);
        assert_eq!(sectors(MAX_KEY, u32::MAX), 8_454_663, "no overflow for the largest lengths");
    }
}
