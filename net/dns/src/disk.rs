//! A zone read at boot from a disk holding a master file: its text runs
//! from the first sector to the first zero byte or the disk's end (so a
//! plain text file is a disk, and so is one padded with zeros). The disk is
//! untrusted: its size, its bytes and the records they spell are all
//! bounded by [`ZoneLimits`] and checked before anything is served.
//!
//! The disk is a sector count and a read function, not `unikernel-storage`'s
//! `BlockDevice`: naming that crate here would link its statics into every
//! image with this crate, `dns` included.

use crate::master::{MasterFileError, ZoneLimits};
use crate::zone::Zone;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// Bytes read per request.
const CHUNK: usize = 64 * 1024;

/// Why the disk's zone was refused.
#[derive(Debug)]
pub enum DiskZoneError {
    /// The disk failed a read (the device's error).
    Read(String),
    /// The text is longer than [`ZoneLimits::max_text`].
    TooLarge(usize),
    /// The disk starts with a zero byte (a fresh disk).
    Empty,
    /// The text is not a zone this server reads.
    Zone(MasterFileError),
}

impl fmt::Display for DiskZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => write!(f, "the zone's disk cannot be read: {e}"),
            Self::TooLarge(limit) => write!(f, "the zone on the disk is refused: larger than {limit} bytes"),
            Self::Empty => {
                f.write_str("the disk holds no zone: it starts with a zero byte (boot with --disk ZONEFILE)")
            }
            Self::Zone(e) => write!(f, "the zone on the disk is refused: {e}"),
        }
    }
}

impl core::error::Error for DiskZoneError {}

/// Reads and checks the zone on a disk of `sectors` sectors of
/// `sector_size` bytes; `read(sector, buf)` fills `buf` (whole sectors)
/// from `sector` and hands it back, as `BlockDevice::read` does (see the
/// `dns_disk` example: `async |s, buf| disk.read(s, buf).await`).
pub async fn read_zone<E: fmt::Display>(
    sectors: u64,
    sector_size: usize,
    read: impl AsyncFnMut(u64, Vec<u8>) -> Result<Vec<u8>, E>,
    limits: &ZoneLimits,
) -> Result<Zone, DiskZoneError> {
    let text = read_text(sectors, sector_size, read, limits.max_text).await?;
    if text.is_empty() {
        return Err(DiskZoneError::Empty);
    }
    Zone::from_master_file(&text, limits).map_err(DiskZoneError::Zone)
}

/// The disk's bytes up to the first zero byte or its end; at most `max`.
async fn read_text<E: fmt::Display>(
    sectors: u64,
    sector_size: usize,
    mut read: impl AsyncFnMut(u64, Vec<u8>) -> Result<Vec<u8>, E>,
    max: usize,
) -> Result<Vec<u8>, DiskZoneError> {
    let per_chunk = (CHUNK / sector_size.max(1)).max(1) as u64;
    let mut text = Vec::new();
    let mut sector = 0;
    while sector < sectors {
        let count = per_chunk.min(sectors - sector);
        let buf = alloc::vec![0; count as usize * sector_size];
        let chunk = read(sector, buf).await.map_err(|e| DiskZoneError::Read(e.to_string()))?;
        let end = chunk.iter().position(|&b| b == 0);
        let take = end.unwrap_or(chunk.len());
        if text.len() + take > max {
            return Err(DiskZoneError::TooLarge(max));
        }
        // Exactly: doubling could take twice the cap.
        text.reserve_exact(take);
        text.extend_from_slice(&chunk[..take]);
        if end.is_some() {
            break;
        }
        sector += count;
    }
    Ok(text)
}

#[cfg(test)]
mod tests;
