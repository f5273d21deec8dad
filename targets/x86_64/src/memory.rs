//! Where the main stack and the heap go. The heap takes the RAM region the
//! image was loaded into, from the image (or the stack) to its end. The main
//! stack goes into the RAM below the image when it fits there (the 640 KiB
//! of PC-like machines, which nothing else uses), so a small guest spends
//! its high RAM on the heap alone.

use crate::{layout, paging, start_info::StartInfo};
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
    ImageOutsideRam {
        image: Range<u64>,
    },
    /// `heap` runs from the end of the image (or stack) to the end of RAM,
    /// and may be empty or reversed when RAM ends before the stack.
    TooLittleMemory {
        image: Range<u64>,
        stack: Range<u64>,
        heap: Range<u64>,
    },
    HeapCapTooSmall {
        cap: usize,
    },
    StackTooLarge {
        size: usize,
    },
}

fn kib(addr: u64) -> u64 {
    addr / 1024
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ImageOutsideRam { image } => write!(
                f,
                "not enough memory: the image ({}–{} KiB) is not inside RAM; give QEMU more with --memory",
                kib(image.start),
                kib(image.end)
            ),
            Self::TooLittleMemory { image, stack, heap } => {
                let missing = heap.start + MIN_HEAP - heap.end;
                write!(f, "not enough memory: {} KiB missing: ", kib(missing))?;
                if heap.start < heap.end {
                    write!(
                        f,
                        "the heap gets {} KiB ({}–{} KiB, the end of RAM), less than the {} KiB minimum",
                        kib(heap.end - heap.start),
                        kib(heap.start),
                        kib(heap.end),
                        kib(MIN_HEAP)
                    )?;
                } else {
                    write!(
                        f,
                        "RAM ends at {} KiB, leaving nothing of the {} KiB minimum heap",
                        kib(heap.end),
                        kib(MIN_HEAP)
                    )?;
                }
                write!(f, "; below it: the image ({}–{} KiB)", kib(image.start), kib(image.end))?;
                if stack.start > image.end {
                    write!(
                        f,
                        ", the main stack and its guard page ({}–{} KiB)",
                        kib(stack.start - PAGE),
                        kib(stack.end)
                    )?;
                }
                f.write_str("; give QEMU more with --memory")
            }
            Self::HeapCapTooSmall { cap } => {
                write!(f, "heap_size {} KiB leaves less than the {} KiB minimum heap", cap / 1024, kib(MIN_HEAP))
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

/// Room for a stack of `len` bytes and its guard page at the top of `low`
/// (RAM below the image), above anything the loader left there.
fn stack_below_image(info: &StartInfo, low: Range<u64>, len: u64) -> Option<Range<u64>> {
    let mut free_start = low.start.max(PAGE);
    for data in info.loader_data() {
        if data.start < low.end && low.start < data.end {
            free_start = free_start.max(data.end);
        }
    }
    let top = low.end & !(PAGE - 1);
    let start = top.checked_sub(len)?;
    (start.checked_sub(PAGE)? >= free_start.next_multiple_of(PAGE)).then_some(start..top)
}

pub fn plan(info: &StartInfo, config: &Config) -> Result<Plan, PlanError> {
    let image = layout::image_start()..layout::image_end().next_multiple_of(PAGE);
    // The RAM region holding the image, and the largest one below it.
    let (mut ram, mut low) = (None, 0..0);
    for region in info.ram() {
        if region.start <= image.start && image.end <= region.end {
            ram = Some(region);
        } else if region.end <= image.start && region.end - region.start > low.end - low.start {
            low = region;
        }
    }
    let ram = ram.ok_or(PlanError::ImageOutsideRam { image: image.clone() })?;
    if config.heap_size.is_some_and(|cap| (cap as u64) < MIN_HEAP) {
        return Err(PlanError::HeapCapTooSmall { cap: config.heap_size.unwrap_or(0) });
    }
    let stack_len = (config.stack_size as u64).next_multiple_of(PAGE);
    let stack = stack_below_image(info, low, stack_len).unwrap_or(image.end + PAGE..image.end + PAGE + stack_len);
    let heap_start = image.end.max(stack.end);
    if heap_start > paging::FINE_LIMIT {
        return Err(PlanError::StackTooLarge { size: config.stack_size });
    }
    let ram_end = paging::heap_limit(ram.end);
    let heap_end = match config.heap_size {
        Some(cap) => ram_end.min(heap_start.saturating_add(cap as u64)),
        None => ram_end,
    };
    if heap_end < heap_start + MIN_HEAP {
        return Err(PlanError::TooLittleMemory { image, stack, heap: heap_start..heap_end });
    }
    Ok(Plan { stack_guard: stack.start - PAGE, stack, heap: heap_start..heap_end })
}
