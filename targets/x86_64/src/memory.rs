//! Where the main stack and the heap go: right after the image, in the RAM
//! region the image was loaded into.

use crate::{layout, paging, start_info::StartInfo};
use core::fmt;
use core::ops::Range;
use unikernel_core::runtime::Config;

pub const PAGE: u64 = 4096;
/// The heap `main` needs at the very least to be worth starting.
const MIN_HEAP: u64 = 1024 * 1024;

pub struct Plan {
    /// The unmapped page just below `stack`.
    pub stack_guard: u64,
    pub stack: Range<u64>,
    pub heap: Range<u64>,
}

pub enum PlanError {
    NoRamAfterImage,
    TooLittleMemory { have: u64, need: u64 },
    HeapCapTooSmall { cap: usize },
    StackTooLarge { size: usize },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRamAfterImage => f.write_str("the memory map has no RAM after the image"),
            Self::TooLittleMemory { have, need } => write!(
                f,
                "not enough memory: {} KiB of RAM, {} KiB needed for image, stack and heap (give QEMU more with -m)",
                have / 1024,
                need / 1024
            ),
            Self::HeapCapTooSmall { cap } => {
                write!(f, "heap_size {} KiB leaves less than the {} KiB minimum heap", cap / 1024, MIN_HEAP / 1024)
            }
            Self::StackTooLarge { size } => write!(
                f,
                "stack_size {} KiB does not fit: image, guard page and stack must end below {} MiB",
                size / 1024,
                paging::FINE_LIMIT >> 20
            ),
        }
    }
}

pub fn plan(info: &StartInfo, config: &Config) -> Result<Plan, PlanError> {
    let image_end = layout::image_end().next_multiple_of(PAGE);
    let region = info.ram().find(|r| r.start <= image_end && image_end < r.end).ok_or(PlanError::NoRamAfterImage)?;
    let stack_guard = image_end;
    let stack = stack_guard + PAGE..stack_guard + PAGE + (config.stack_size as u64).next_multiple_of(PAGE);
    if stack.end > paging::FINE_LIMIT {
        return Err(PlanError::StackTooLarge { size: config.stack_size });
    }
    let ram_end = paging::mappable(region.clone()).end.max(stack.end);
    let heap_end = match config.heap_size {
        Some(max) => ram_end.min(stack.end.saturating_add(max as u64)),
        None => ram_end,
    };
    if config.heap_size.is_some_and(|cap| (cap as u64) < MIN_HEAP) {
        return Err(PlanError::HeapCapTooSmall { cap: config.heap_size.unwrap_or(0) });
    }
    if heap_end < stack.end + MIN_HEAP {
        return Err(PlanError::TooLittleMemory { have: region.end, need: stack.end + MIN_HEAP });
    }
    Ok(Plan { stack_guard, stack: stack.clone(), heap: stack.end..heap_end })
}
