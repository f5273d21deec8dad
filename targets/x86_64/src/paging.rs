//! The final page tables: an identity map of RAM and of two device windows
//! below 4 GiB (local APIC, I/O APIC, HPET, microvm's virtio-mmio; PCI
//! memory BARs, which the virtio crate places from 0xc000_0000), nothing
//! else. The image and the stacks get 4 KiB pages so each part has its own
//! permissions (W^X, guard pages unmapped, page 0 unmapped to catch null
//! pointers); the rest uses 2 MiB pages, uncached for devices. Mapping only
//! what exists matters under shadow paging (nested KVM), where the cost of
//! switching to these tables grows with what they map.

use crate::boot_cell::BootCell;
use crate::memory::{PAGE, Plan};
use crate::{layout, start_info::StartInfo};
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::PhysAddr;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTable, PageTableFlags as F, PhysFrame};

/// Everything above is unmapped.
pub const IDENTITY_LIMIT: u64 = 4 << 30;
/// Memory-mapped devices of PC-like machines live in the last 32 MiB.
const DEVICE_WINDOW: u64 = IDENTITY_LIMIT - (32 << 20);
/// PCI memory BARs, as assigned by `unikernel-virtio` (q35 has no RAM from
/// 0xb000_0000 up; RAM there on other machines is left out of the heap).
const PCI_WINDOW: core::ops::Range<u64> = 0xc000_0000..0xc200_0000;
pub const HUGE: u64 = 2 << 20;

/// Whether `addr` is in the uncached device window this module maps.
pub fn in_device_window(addr: u64) -> bool {
    (DEVICE_WINDOW..IDENTITY_LIMIT).contains(&addr)
}

/// The 2 MiB-aligned part of a RAM range that the identity map covers
/// (below the device windows); the heap must stay inside it.
pub fn mappable(ram: core::ops::Range<u64>) -> core::ops::Range<u64> {
    ram.start.next_multiple_of(HUGE)..ram.end.min(PCI_WINDOW.start) & !(HUGE - 1)
}
/// Page tables for 4 KiB mappings, each covering 2 MiB.
const FINE_TABLES: usize = 8;
/// The end of the range mapped with 4 KiB pages.
pub const FINE_LIMIT: u64 = FINE_TABLES as u64 * HUGE;

static PML4: BootCell<PageTable> = BootCell::new(PageTable::new());
static PDPT: BootCell<PageTable> = BootCell::new(PageTable::new());
static PDS: BootCell<[PageTable; 4]> = BootCell::new([const { PageTable::new() }; 4]);
static PTS: BootCell<[PageTable; FINE_TABLES]> = BootCell::new([const { PageTable::new() }; FINE_TABLES]);
static MAIN_STACK_GUARD: AtomicU64 = AtomicU64::new(u64::MAX);

/// Identity-maps `range` with pages of `1 << shift` bytes: 4 KiB entries in
/// the page tables, or 2 MiB entries in the page directories, both indexed
/// by `addr >> shift` across the consecutive tables. Only mapped regions
/// are visited, through this one loop: under emulation every distinct block
/// and every iteration costs boot time.
#[inline(never)]
fn map_identity(tables: &mut [PageTable], range: core::ops::Range<u64>, shift: u32, flags: F) {
    let mut addr = range.start;
    while addr < range.end {
        let index = (addr >> shift) as usize;
        tables[index / 512][index % 512].set_addr(PhysAddr::new(addr), flags);
        addr += 1 << shift;
    }
}

/// The page-directory entry that maps the 2 MiB region at `base`.
fn pd_entry(pds: &mut [PageTable; 4], base: u64) -> &mut PageTableEntry {
    &mut pds[(base >> 30) as usize][((base >> 21) & 511) as usize]
}

fn table_addr(table: *const PageTable) -> PhysAddr {
    // Identity mapping: a table's virtual address is its physical address.
    PhysAddr::new(table as u64)
}

/// The 4 KiB mappings below `fine_end`, as address runs with their
/// permissions, in address order. The gaps stay unmapped: page 0 (null
/// pointers) and the guard pages below the boot and main stacks.
fn fine_runs(plan: &Plan, fine_end: u64) -> [(u64, u64, F); 6] {
    let rw_nx = F::PRESENT | F::WRITABLE | F::NO_EXECUTE;
    let boot_guard = layout::boot_stack_guard();
    [
        (PAGE, layout::image_start(), rw_nx),
        (layout::image_start(), layout::text_end(), F::PRESENT),
        (layout::text_end(), layout::rodata_end(), F::PRESENT | F::NO_EXECUTE),
        (layout::rodata_end(), boot_guard, rw_nx),
        (boot_guard + PAGE, plan.stack_guard, rw_nx),
        (plan.stack_guard + PAGE, fine_end, rw_nx),
    ]
}

pub fn init(plan: &Plan, info: &StartInfo) {
    MAIN_STACK_GUARD.store(plan.stack_guard, Ordering::Relaxed);
    let fine_end = plan.stack.end.next_multiple_of(HUGE);
    let table = F::PRESENT | F::WRITABLE;
    let huge = F::PRESENT | F::WRITABLE | F::NO_EXECUTE | F::HUGE_PAGE;
    // SAFETY: boot runs on one CPU with interrupts off, before anything else
    // can reach these tables; the boot tables stay live until Cr3::write.
    unsafe {
        let (pml4, pdpt, pds, pts) = (&mut *PML4.get(), &mut *PDPT.get(), &mut *PDS.get(), &mut *PTS.get());
        pml4[0].set_addr(table_addr(pdpt), table);
        for (gib, pd) in pds.iter().enumerate() {
            pdpt[gib].set_addr(table_addr(pd), table);
        }
        for base in (0..fine_end).step_by(HUGE as usize) {
            pd_entry(pds, base).set_addr(table_addr(&pts[(base / HUGE) as usize]), table);
        }
        for (start, end, flags) in fine_runs(plan, fine_end) {
            map_identity(pts, start..end, 12, flags);
        }
        for ram in info.ram() {
            let ram = mappable(ram);
            map_identity(pds, ram.start.max(fine_end)..ram.end, 21, huge);
        }
        for window in [PCI_WINDOW, DEVICE_WINDOW..IDENTITY_LIMIT] {
            map_identity(pds, window, 21, huge | F::NO_CACHE | F::WRITE_THROUGH);
        }
        let frame = PhysFrame::containing_address(table_addr(pml4));
        Cr3::write(frame, Cr3Flags::empty());
    }
}

/// Whether reading `addr` would not fault (for the crash report).
pub fn is_mapped(addr: u64) -> bool {
    if addr >= IDENTITY_LIMIT {
        return false;
    }
    // SAFETY: read-only walk of tables written once in `init`; before that
    // they are all empty and nothing counts as mapped.
    let (pds, pts) = unsafe { (&*PDS.get(), &*PTS.get()) };
    let pde = &pds[(addr >> 30) as usize][((addr >> 21) & 511) as usize];
    if pde.flags().contains(F::HUGE_PAGE) {
        return pde.flags().contains(F::PRESENT);
    }
    pde.flags().contains(F::PRESENT)
        && pts[(addr / HUGE) as usize][((addr >> 12) & 511) as usize].flags().contains(F::PRESENT)
}

/// Describes `addr` when it lies in a stack's guard page.
pub fn guard_page_of(addr: u64) -> Option<&'static str> {
    let page = addr & !(PAGE - 1);
    if page == MAIN_STACK_GUARD.load(Ordering::Relaxed) {
        Some("stack overflow: guard page below the main stack")
    } else if page == layout::boot_stack_guard() {
        Some("stack overflow: guard page below the boot stack")
    } else {
        None
    }
}
