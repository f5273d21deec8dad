//! The error of block operations.

use core::fmt;

/// Why a block operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The range is not on the disk.
    OutOfRange {
        /// First sector asked for.
        sector: u64,
        /// Sectors asked for.
        count: u64,
        /// Sectors the disk has.
        sectors: u64,
    },
    /// The buffer is empty or not a whole number of sectors.
    Unaligned {
        /// The buffer's length in bytes.
        len: usize,
    },
    /// The device reported an I/O error.
    Io,
    /// The device cannot make writes durable (no flush support).
    NoFlush,
    /// The device refused the request (read-only, unsupported).
    Unsupported,
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange { sector, count, sectors } => {
                write!(f, "sectors {sector}..{} are out of range: the disk has {sectors}", sector + count)
            }
            Self::Unaligned { len } => write!(f, "{len} bytes is not a whole number of 512-byte sectors"),
            Self::Io => f.write_str("I/O error"),
            Self::NoFlush => f.write_str("the device cannot flush, so writes cannot be made durable"),
            Self::Unsupported => f.write_str("the device refused the request"),
        }
    }
}

impl core::error::Error for BlockError {}
