//! The storage metrics (see `unikernel_core::metrics`): requests the
//! `block` component completed, counted on both targets, and the size of
//! the key-value store.

use unikernel_core::metrics::Counter;
use unikernel_core::{counter, gauge};

counter!(pub static READS = "unikernel_block_reads_total", "Block reads completed.");
counter!(pub static READ_BYTES = "unikernel_block_read_bytes_total", "Bytes of the block reads completed.");
counter!(pub static WRITES = "unikernel_block_writes_total", "Block writes completed.");
counter!(pub static WRITTEN_BYTES = "unikernel_block_written_bytes_total", "Bytes of the block writes completed.");
counter!(pub static FLUSHES = "unikernel_block_flushes_total", "Block flushes completed.");
counter!(pub static ERRORS = "unikernel_block_errors_total", "Block requests that failed.");
gauge!(pub static KV_KEYS = "unikernel_kv_keys", "Keys in the key-value store (the one changed last, if several).");
gauge!(
    pub static KV_LIVE_BYTES = "unikernel_kv_live_bytes",
    "Bytes on disk the store's live records take: what a compaction copies (the one changed last, if several)."
);

/// Counts a completed request of `bytes` with `done`/`bytes_done`, or a failure.
pub(crate) fn count<T>(result: &Result<T, crate::BlockError>, done: &Counter, bytes_done: &Counter, bytes: usize) {
    match result {
        Ok(_) => {
            done.inc();
            bytes_done.add(bytes as u64);
        }
        Err(_) => ERRORS.inc(),
    }
}
