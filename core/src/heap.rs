//! The bare-metal heap: `linked_list_allocator` over the RAM the boot target
//! found free. Hosted builds use the host allocator instead.

use linked_list_allocator::LockedHeap;

#[cfg_attr(target_os = "none", global_allocator)]
static HEAP: LockedHeap = LockedHeap::empty();

/// Heap occupancy in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    pub size: usize,
    pub used: usize,
    pub free: usize,
}

/// Hands `[start, start + size)` to the heap.
///
/// # Safety
/// The range must be mapped, writable, unused by anything else for the rest
/// of the run, and this must be called once.
pub unsafe fn init(start: *mut u8, size: usize) {
    // SAFETY: forwarded to the caller.
    unsafe { HEAP.lock().init(start, size) };
}

/// Current occupancy of the bare-metal heap.
pub fn stats() -> Stats {
    let heap = HEAP.lock();
    Stats { size: heap.size(), used: heap.used(), free: heap.free() }
}
