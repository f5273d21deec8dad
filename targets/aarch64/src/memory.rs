//! Where the main stack and the heap go: after the image, a guard page,
//! the stack, then the heap to the end of the RAM region holding the image.

use crate::{layout, paging};
use core::fmt;
use core::ops::Range;
use unikernel_core::runtime::Config;

pub const PAGE: u64 = 4096;
/// The heap below which `main` is not started (see the runtime's constant).
const MIN_HEAP: u64 = unikernel_core::runtime::MIN_HEAP as u64;

pub struct Plan {
    /// The unmapped page just below `stack`.
    pub stack_guard: u64,
    pub stack: Range<u64>,
    pub heap: Range<u64>,
}

pub enum PlanError {
    TooLittleMemory { ram_end: u64, heap_start: u64 },
    HeapCapTooSmall { cap: usize },
    StackTooLarge { size: usize },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLittleMemory { ram_end, heap_start } => write!(
                f,
                "not enough memory: the heap would get {} KiB (from {heap_start:#x} to the end of RAM at {ram_end:#x}), \
                 less than the {} KiB minimum; give QEMU more with --memory",
                ram_end.saturating_sub(*heap_start) / 1024,
                MIN_HEAP / 1024
            ),
            Self::HeapCapTooSmall { cap } => {
                write!(f, "heap_size {} KiB leaves less than the {} KiB minimum heap", cap / 1024, MIN_HEAP / 1024)
            }
            Self::StackTooLarge { size } => write!(
                f,
                "stack_size {} KiB does not fit: image, guard page and stack must fit the {} MiB mapped with 4 KiB pages",
                size / 1024,
                paging::FINE_SPAN >> 20
            ),
        }
    }
}

pub fn plan(ram: Range<u64>, config: &Config) -> Result<Plan, PlanError> {
    if config.heap_size.is_some_and(|cap| (cap as u64) < MIN_HEAP) {
        return Err(PlanError::HeapCapTooSmall { cap: config.heap_size.unwrap_or(0) });
    }
    let stack_guard = layout::image_end().next_multiple_of(PAGE);
    let stack_len = (config.stack_size as u64).next_multiple_of(PAGE);
    let stack = stack_guard + PAGE..stack_guard + PAGE + stack_len;
    if stack.end > paging::fine_end() {
        return Err(PlanError::StackTooLarge { size: config.stack_size });
    }
    let ram_end = paging::heap_limit(ram.end);
    let heap_end = match config.heap_size {
        Some(cap) => ram_end.min(stack.end.saturating_add(cap as u64)),
        None => ram_end,
    };
    if heap_end < stack.end + MIN_HEAP {
        return Err(PlanError::TooLittleMemory { ram_end, heap_start: stack.end });
    }
    Ok(Plan { stack_guard, stack: stack.clone(), heap: stack.end..heap_end })
}
