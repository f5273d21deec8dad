//! The bare-metal heap: Talc (the allocator Hermit uses) over the RAM the
//! boot target found free. `linked_list_allocator` was tried first and
//! measured: its free list made a task spawn+join cost ~60 µs with 10,000
//! live tasks; Talc's binned free lists keep it flat. Hosted builds use the
//! host allocator instead.

use talc::{ErrOnOom, Span, Talc, Talck};

#[cfg_attr(target_os = "none", global_allocator)]
static HEAP: Talck<spin::Mutex<()>, ErrOnOom> = Talc::new(ErrOnOom).lock();

/// Heap occupancy in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Bytes handed to the heap so far.
    pub size: usize,
    /// Bytes in live allocations.
    pub used: usize,
    /// Bytes still available for allocation (possibly fragmented).
    pub free: usize,
}

/// Hands `[start, start + size)` to the heap.
///
/// # Safety
/// The range must be mapped, writable, unused by anything else for the rest
/// of the run, and this must be called once.
pub unsafe fn init(start: *mut u8, size: usize) {
    // SAFETY: forwarded to the caller. An error means the span is too small
    // to hold Talc's metadata; the heap then stays empty and allocation
    // fails with a clear out-of-memory panic.
    let _ = unsafe { HEAP.lock().claim(Span::from_base_size(start, size)) };
}

/// Current occupancy of the bare-metal heap.
pub fn stats() -> Stats {
    let heap = HEAP.lock();
    let counters = heap.get_counters();
    Stats { size: counters.claimed_bytes, used: counters.allocated_bytes, free: counters.available_bytes }
}
