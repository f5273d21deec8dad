//! The on-disk record: a 32-byte header, the key, the value, padded to
//! whole sectors. A CRC-32 over header, key and value makes a torn or
//! damaged record detectable; the generation keeps records of an older
//! use of the same space from being taken for current ones.
//!
//! ```text
//! 0  magic u32 | 4 generation u32 | 8 sequence u64 | 16 key_len u16 | 18 op u8 | 19 0
//! 20 value_len u32 | 24 0 u32 | 28 crc u32 | 32 key | value | padding
//! ```

use crate::SECTOR_SIZE;
use alloc::vec::Vec;

const MAGIC: u32 = 0x7672_6b75; // "ukrv"
pub const HEADER: usize = 32;
/// Longest key accepted.
pub const MAX_KEY: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Put = 1,
    Delete = 2,
}

/// A decoded record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub generation: u32,
    pub sequence: u64,
    pub op: Op,
    pub key_len: usize,
    pub value_len: usize,
    crc: u32,
}

impl Header {
    /// Bytes the record takes on disk, padding included.
    pub fn span(&self) -> usize {
        (HEADER + self.key_len + self.value_len).next_multiple_of(SECTOR_SIZE)
    }

    /// Whether `body` (key then value) belongs to this header.
    pub fn matches(&self, header: &[u8], body: &[u8]) -> bool {
        crc(&header[..28], body) == self.crc
    }
}

fn crc(header: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(body);
    hasher.finalize()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Parses a header; `None` for anything that is not one (zeros, garbage,
/// a torn first sector) or whose lengths could not fit in `room` bytes.
pub fn decode(b: &[u8], room: usize) -> Option<Header> {
    if b.len() < HEADER || u32_at(b, 0) != MAGIC || b[19] != 0 || u32_at(b, 24) != 0 {
        return None;
    }
    let op = match b[18] {
        1 => Op::Put,
        2 => Op::Delete,
        _ => return None,
    };
    let key_len = usize::from(u16::from_le_bytes([b[16], b[17]]));
    let value_len = u32_at(b, 20) as usize;
    let header = Header {
        generation: u32_at(b, 4),
        sequence: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
        op,
        key_len,
        value_len,
        crc: u32_at(b, 28),
    };
    (key_len > 0 && key_len <= MAX_KEY && header.span() <= room).then_some(header)
}

/// The record's bytes on disk.
pub fn encode(generation: u32, sequence: u64, op: Op, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity((HEADER + key.len() + value.len()).next_multiple_of(SECTOR_SIZE));
    b.extend_from_slice(&MAGIC.to_le_bytes());
    b.extend_from_slice(&generation.to_le_bytes());
    b.extend_from_slice(&sequence.to_le_bytes());
    b.extend_from_slice(&(key.len() as u16).to_le_bytes());
    b.extend_from_slice(&[op as u8, 0]);
    b.extend_from_slice(&(value.len() as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    let crc = crc(&b, &[key, value].concat());
    b.extend_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(key);
    b.extend_from_slice(value);
    b.resize(b.len().next_multiple_of(SECTOR_SIZE), 0);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_is_detected() {
        let b = encode(3, 42, Op::Put, b"key", b"value");
        assert_eq!(b.len(), SECTOR_SIZE);
        let h = decode(&b, 1 << 20).expect("a header");
        assert_eq!((h.generation, h.sequence, h.op, h.key_len, h.value_len), (3, 42, Op::Put, 3, 5));
        assert!(h.matches(&b, &b[HEADER..HEADER + 8]));
        let mut bad = b.clone();
        bad[HEADER + 5] ^= 1; // one bit of the value
        assert!(!h.matches(&bad, &bad[HEADER..HEADER + 8]));
        assert_eq!(decode(&[0; 512], 1 << 20), None, "zeros are not a record");
        assert_eq!(decode(&b, 256), None, "a record longer than the room left");
    }
}
