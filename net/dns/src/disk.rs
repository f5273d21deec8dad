//! A zone read at boot from a `block` disk holding a master file: its text
//! runs from the first sector to the first zero byte or the disk's end
//! (so a plain text file is a disk, and so is one padded with zeros). The
//! disk is untrusted: its size, its bytes and the records they spell are
//! all bounded by [`ZoneLimits`] and checked before anything is served.

use crate::master::{MasterFileError, ZoneLimits};
use crate::zone::Zone;
use alloc::vec::Vec;
use core::fmt;
use unikernel_storage::{BlockDevice, BlockError};

/// Bytes read per request.
const CHUNK: usize = 64 * 1024;

/// Why the disk's zone was refused.
#[derive(Debug)]
pub enum DiskZoneError {
    /// The disk failed a read.
    Read(BlockError),
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

/// Reads and checks the zone on `disk` (see the module documentation).
pub async fn read_zone(disk: &impl BlockDevice, limits: &ZoneLimits) -> Result<Zone, DiskZoneError> {
    let text = read_text(disk, limits.max_text).await?;
    if text.is_empty() {
        return Err(DiskZoneError::Empty);
    }
    Zone::from_master_file(&text, limits).map_err(DiskZoneError::Zone)
}

/// The disk's bytes up to the first zero byte or its end; at most `max`.
async fn read_text(disk: &impl BlockDevice, max: usize) -> Result<Vec<u8>, DiskZoneError> {
    let sector_size = disk.sector_size();
    let per_chunk = (CHUNK / sector_size).max(1) as u64;
    let mut text = Vec::new();
    let mut sector = 0;
    while sector < disk.sectors() {
        let count = per_chunk.min(disk.sectors() - sector);
        let chunk =
            disk.read(sector, alloc::vec![0; count as usize * sector_size]).await.map_err(DiskZoneError::Read)?;
        let end = chunk.iter().position(|&b| b == 0);
        let take = end.unwrap_or(chunk.len());
        if text.len() + take > max {
            return Err(DiskZoneError::TooLarge(max));
        }
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
