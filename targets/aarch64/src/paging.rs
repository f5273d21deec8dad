//! Translation tables. The boot map (a constant level-1 table: devices
//! below 1 GiB, RAM above, as on QEMU's `virt`) lets Rust run with caches
//! and atomics; [`init`] then replaces it with the final map, from the
//! device tree: everything below RAM as device memory, the image W^X with
//! 4 KiB pages (code read+execute, read-only data, data and stacks
//! read+write+never-execute), the guard pages below both stacks unmapped,
//! and the rest of RAM read+write+never-execute in large blocks.
//!
//! 4 KiB granule, 39-bit addresses (walks start at level 1), identity map.

use crate::devicetree::Machine;
use crate::{layout, memory::Plan};
use core::cell::UnsafeCell;
use core::fmt;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

const PAGE: u64 = 4096;
const BLOCK_2M: u64 = 2 << 20;
const BLOCK_1G: u64 = 1 << 30;
const ENTRIES: usize = 512;

/// MAIR_EL1: attribute 0 Device-nGnRnE, attribute 1 Normal write-back
/// read/write-allocate (inner and outer).
pub const MAIR: u64 = 0xff << 8;
/// TCR_EL1: T0SZ 25 (512 GiB), walks write-back cacheable and inner
/// shareable, 4 KiB granule, TTBR1 walks disabled (EPD1), 40-bit physical
/// addresses.
pub const TCR: u64 = 25 | 1 << 8 | 1 << 10 | 3 << 12 | 1 << 23 | 2 << 32;

const VALID: u64 = 1;
/// In a level-1/2 entry: a table rather than a block; in level 3: a page.
const TABLE_OR_PAGE: u64 = 1 << 1;
const DEVICE: u64 = 0 << 2;
const NORMAL: u64 = 1 << 2;
const READ_ONLY: u64 = 1 << 7;
const INNER_SHAREABLE: u64 = 3 << 8;
const ACCESSED: u64 = 1 << 10;
const PRIVILEGED_NO_EXECUTE: u64 = 1 << 53;
const UNPRIVILEGED_NO_EXECUTE: u64 = 1 << 54;

const RAM_RWX: u64 = NORMAL | INNER_SHAREABLE | ACCESSED | UNPRIVILEGED_NO_EXECUTE;
const NO_EXECUTE: u64 = PRIVILEGED_NO_EXECUTE | UNPRIVILEGED_NO_EXECUTE;
const CODE: u64 = RAM_RWX | READ_ONLY;
const READ_ONLY_DATA: u64 = RAM_RWX | READ_ONLY | NO_EXECUTE;
const DATA: u64 = RAM_RWX | NO_EXECUTE;
const DEVICE_MEMORY: u64 = DEVICE | ACCESSED | NO_EXECUTE;

/// RAM the boot map covers: up to 16 GiB.
const BOOT_RAM_GIB: usize = 16;
/// The 2 MiB blocks mapped with 4 KiB pages from the image's start: image,
/// boot stack, main stack and their guard pages must fit.
const FINE_BLOCKS: usize = 8;
pub const FINE_SPAN: u64 = FINE_BLOCKS as u64 * BLOCK_2M;
/// Level-2 tables: the first GiB (to leave page 0 unmapped), the image's
/// GiB, and a RAM region's partial first and last GiB.
const LEVEL2_TABLES: usize = 4;

#[repr(C, align(4096))]
pub struct Table([u64; ENTRIES]);

/// The boot map, read by the MMU from `boot.rs` until [`init`].
pub static BOOT_TABLE: Table = {
    let mut entries = [0; ENTRIES];
    entries[0] = DEVICE_MEMORY | VALID;
    let mut gib = 1;
    while gib <= BOOT_RAM_GIB {
        entries[gib] = (gib as u64 * BLOCK_1G) | RAM_RWX | VALID;
        gib += 1;
    }
    Table(entries)
};

struct Tables {
    level1: Table,
    level2: [Table; LEVEL2_TABLES],
    level3: [Table; FINE_BLOCKS],
}

struct FinalTables(UnsafeCell<Tables>);

// SAFETY: written once by `init`, during single-threaded boot with
// interrupts masked, before the MMU is pointed at it; never written again.
unsafe impl Sync for FinalTables {}

static TABLES: FinalTables = FinalTables(UnsafeCell::new(Tables {
    level1: Table([0; ENTRIES]),
    level2: [const { Table([0; ENTRIES]) }; LEVEL2_TABLES],
    level3: [const { Table([0; ENTRIES]) }; FINE_BLOCKS],
}));

pub enum PagingError {
    TooManyTables,
}

impl fmt::Display for PagingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RAM layout needs more translation tables than the target reserves")
    }
}

fn fine_start() -> u64 {
    layout::image_start() & !(BLOCK_2M - 1)
}

/// Where the 4 KiB-mapped span ends: the stack must end below it.
pub fn fine_end() -> u64 {
    fine_start() + FINE_SPAN
}

/// The end of usable RAM: a whole number of 2 MiB blocks.
pub fn heap_limit(ram_end: u64) -> u64 {
    ram_end & !(BLOCK_2M - 1)
}

/// What a 4 KiB page of the fine span holds.
fn page_attributes(page: u64, plan: &Plan, ram_end: u64) -> Option<u64> {
    let in_page = |addr: u64| (page..page + PAGE).contains(&addr);
    if in_page(layout::boot_stack_guard()) || in_page(plan.stack_guard) || page >= ram_end {
        None
    } else if (layout::image_start()..layout::text_end()).contains(&page) {
        Some(CODE)
    } else if (layout::text_end()..layout::rodata_end()).contains(&page) {
        Some(READ_ONLY_DATA)
    } else {
        Some(DATA)
    }
}

/// Everything below RAM is mapped as device memory: where that ends.
static DEVICE_END: AtomicU64 = AtomicU64::new(0);

/// Whether `window` lies in the device memory [`init`] mapped.
pub fn is_device(window: Range<u64>) -> bool {
    window.start < window.end && window.end <= DEVICE_END.load(Ordering::Relaxed)
}

/// Builds the final map and switches to it.
pub fn init(plan: &Plan, machine: &Machine) -> Result<(), PagingError> {
    // SAFETY: see `FinalTables`: boot, one CPU, nothing else refers to it.
    let tables = unsafe { &mut *TABLES.0.get() };
    let (ram_start, ram_end) = (machine.ram.start, heap_limit(machine.ram.end));
    let fine = fine_start()..fine_end();
    DEVICE_END.store(ram_start & !(BLOCK_2M - 1), Ordering::Relaxed);
    for (i, table) in tables.level3.iter_mut().enumerate() {
        let block = fine.start + i as u64 * BLOCK_2M;
        for (j, entry) in table.0.iter_mut().enumerate() {
            let page = block + j as u64 * PAGE;
            *entry =
                page_attributes(page, plan, ram_end).map_or(0, |attributes| page | attributes | VALID | TABLE_OR_PAGE);
        }
    }
    let level3 = |addr: u64| &tables.level3[((addr - fine.start) / BLOCK_2M) as usize] as *const Table as u64;
    let mut level2 = tables.level2.iter_mut();
    for (i, entry) in tables.level1.0.iter_mut().enumerate() {
        let gib = i as u64 * BLOCK_1G;
        let whole_ram = ram_start <= gib && gib + BLOCK_1G <= ram_end;
        *entry = if gib + BLOCK_1G <= ram_start && gib != 0 {
            gib | DEVICE_MEMORY | VALID
        } else if gib >= ram_end {
            0
        } else if whole_ram && !(gib..gib + BLOCK_1G).contains(&fine.start) {
            gib | DATA | VALID
        } else {
            let table = level2.next().ok_or(PagingError::TooManyTables)?;
            for (j, entry) in table.0.iter_mut().enumerate() {
                let block = gib + j as u64 * BLOCK_2M;
                *entry = if block == 0 {
                    0 // null pointers fault (QEMU's virt has flash there, unused)
                } else if fine.contains(&block) {
                    level3(block) | VALID | TABLE_OR_PAGE
                } else if ram_start <= block && block + BLOCK_2M <= ram_end {
                    block | DATA | VALID
                } else if block + BLOCK_2M <= ram_start {
                    block | DEVICE_MEMORY | VALID
                } else {
                    0
                };
            }
            table as *const Table as u64 | VALID | TABLE_OR_PAGE
        };
    }
    // SAFETY: the new map is an identity map like the boot map, and maps
    // this code, its stack and the tree with the same addresses; the
    // barriers make the tables visible to the walker before the switch and
    // drop the boot map's cached translations after it.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "msr ttbr0_el1, {table}",
            "isb",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            table = in(reg) &tables.level1 as *const Table as u64,
            options(nostack)
        );
    }
    Ok(())
}

/// Whether a read of `addr` would translate (for crash reports, which walk
/// stacks they cannot trust). Asks the MMU itself.
pub fn is_mapped(addr: u64) -> bool {
    let par: u64;
    // SAFETY: AT only translates, it does not access memory; PAR_EL1 is
    // then read before anything else can translate.
    unsafe {
        core::arch::asm!("at s1e1r, {addr}", "isb", "mrs {par}, par_el1", addr = in(reg) addr, par = out(reg) par, options(nostack))
    };
    par & 1 == 0
}

/// What a fault at `addr` hit, if it is a guard page.
pub fn guard_page_of(addr: u64) -> Option<&'static str> {
    let page = addr & !(PAGE - 1);
    if Some(page) == crate::stack::main_stack_guard() {
        Some("stack overflow: guard page below the main stack")
    } else if page == layout::boot_stack_guard() {
        Some("stack overflow: guard page below the exception stack")
    } else {
        None
    }
}
