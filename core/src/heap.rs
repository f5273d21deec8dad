//! The bare-metal heap: Talc (the allocator Hermit uses) over the RAM the
//! boot target found free. `linked_list_allocator` was tried first and
//! measured: its free list made a task spawn+join cost ~60 µs with 10,000
//! live tasks; Talc's binned free lists keep it flat. Hosted builds use the
//! host allocator instead.

use core::alloc::{GlobalAlloc, Layout};
use talc::{ErrOnOom, Span, Talc, Talck};

#[cfg_attr(target_os = "none", global_allocator)]
static HEAP: Counted = Counted(Talc::new(ErrOnOom).lock());

crate::__declare_metric!(Gauge; pub static HEAP_USED = "unikernel_heap_used_bytes", "Bytes in live heap allocations.", read = || stats().used as u64);
crate::__declare_metric!(Gauge; pub static HEAP_SIZE = "unikernel_heap_size_bytes", "Bytes of RAM given to the heap.", read = || stats().size as u64);
crate::__declare_metric!(Gauge;
    pub static HEAP_PEAK = "unikernel_heap_peak_bytes",
    "Most bytes in live heap allocations since boot, as seen after each allocation or growth."
);

/// Talc, keeping the peak of its allocated bytes: one comparison under
/// the lock an allocation takes anyway.
struct Counted(Talck<spin::Mutex<()>, ErrOnOom>);

impl Counted {
    fn lock(&self) -> lock_api::MutexGuard<'_, spin::Mutex<()>, Talc<ErrOnOom>> {
        self.0.lock()
    }
}

// SAFETY: every call is forwarded to Talck's implementation, or does what
// it does (`alloc`) and only reads the counters besides.
unsafe impl GlobalAlloc for Counted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut talc = self.lock();
        // SAFETY: forwarded from the caller (a layout of non-zero size).
        let ptr = unsafe { talc.malloc(layout) }.map_or(core::ptr::null_mut(), |p| p.as_ptr());
        HEAP_PEAK.raise(talc.get_counters().allocated_bytes as u64);
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        let ptr = unsafe { self.0.realloc(ptr, layout, new_size) };
        if new_size > layout.size() {
            HEAP_PEAK.raise(self.lock().get_counters().allocated_bytes as u64);
        }
        ptr
    }
}

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
