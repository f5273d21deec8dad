//! What the store reports: its errors, its limits, and what opening found.

use super::half;
use super::record::MAX_KEY;
use crate::BlockError;
use core::fmt;

/// Why a store operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The disk failed underneath the store.
    Block(BlockError),
    /// The disk holds neither an empty disk nor a store (use `format`).
    NotAStore,
    /// The disk holds a store of another format version, which this build
    /// refuses rather than misreads.
    UnsupportedFormat {
        /// The version found on the disk.
        version: u32,
    },
    /// The live records and the new one do not fit in half the disk.
    Full,
    /// The in-memory index would outgrow [`Limits::index_bytes`].
    IndexFull {
        /// The limit it would exceed, in bytes.
        budget: usize,
    },
    /// Keys are 1 to 1024 bytes.
    BadKey,
    /// The value is longer than [`Limits::max_value`].
    ValueTooBig {
        /// The longest value allowed, in bytes.
        max: usize,
    },
    /// The disk is too small for a store (fewer than 16 sectors).
    TooSmall,
    /// A record changed on the disk since it was written (bad media), or
    /// the disk holds values no store writes (a generation at its limit).
    Corrupt,
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
            Self::UnsupportedFormat { version } => write!(
                f,
                "the disk holds a version-{version} store; this build reads version {} only (copy the data out with a build that reads it, then format)",
                half::VERSION
            ),
            Self::Full => f.write_str("the store is full"),
            Self::IndexFull { budget } => {
                write!(f, "the store's key index would outgrow its {budget}-byte memory budget")
            }
            Self::BadKey => write!(f, "keys are 1 to {MAX_KEY} bytes"),
            Self::ValueTooBig { max } => write!(f, "values are at most {max} bytes"),
            Self::TooSmall => f.write_str("the disk is too small for a store"),
            Self::Corrupt => f.write_str("the store's data on the disk is damaged"),
        }
    }
}

impl core::error::Error for StoreError {}

/// What the store may use. Opening applies them too: a record with a
/// longer value is skipped as damage, and an index that would outgrow its
/// budget makes `open` fail with [`StoreError::IndexFull`] rather than
/// exhaust memory (open with a larger budget to read it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest value `put` accepts, in bytes (default 1 MiB).
    pub max_value: usize,
    /// Memory the in-RAM index may take: the keys' bytes plus
    /// [`Limits::ENTRY_OVERHEAD`] per key (default 8 MiB).
    pub index_bytes: usize,
}

impl Limits {
    /// Index bytes counted per key besides the key itself: the map's node
    /// share and the location (78 bytes measured on x86_64), and the
    /// allocator's rounding and header of the key's allocation.
    pub const ENTRY_OVERHEAD: usize = 128;

    /// What one key costs against [`Limits::index_bytes`].
    pub fn key_cost(key_len: usize) -> usize {
        key_len + Self::ENTRY_OVERHEAD
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_value: 1 << 20, index_bytes: 8 << 20 }
    }
}

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
