//! The final page tables: an identity map of RAM and of three device
//! windows below 4 GiB (local APIC, I/O APIC, HPET, microvm's virtio-mmio;
//! PCI memory BARs in `layout::PCI_WINDOW`; Firecracker's virtio-mmio in
//! `layout::FIRECRACKER_MMIO`), nothing
//! else. Low memory, the image and the stacks get 4 KiB pages so each part
//! has its own permissions (W^X, guard pages unmapped, page 0 unmapped to
//! catch null pointers), and so do the heap's ends off 2 MiB boundaries (a
//! guest with a few MiB of RAM uses all of it); the rest uses 2 MiB pages,
//! uncached for devices. Mapping only what exists matters under shadow
//! paging (nested KVM), where the cost of switching to these tables grows
//! with what they map.

use crate::boot_cell::BootCell;
use crate::memory::{PAGE, Plan};
use crate::{layout, start_info::StartInfo};
use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::PhysAddr;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTable, PageTableFlags as F, PhysFrame};

/// Everything above is unmapped.
pub const IDENTITY_LIMIT: u64 = 4 << 30;
/// Memory-mapped devices of PC-like machines live in the last 32 MiB.
const DEVICE_WINDOW: u64 = IDENTITY_LIMIT - (32 << 20);
pub const HUGE: u64 = 2 << 20;

/// The uncached windows this module maps for devices.
const DEVICE_WINDOWS: [Range<u64>; 3] = [layout::PCI_WINDOW, layout::FIRECRACKER_MMIO, DEVICE_WINDOW..IDENTITY_LIMIT];

/// Whether `addr` is in the uncached device window of PC-like machines.
pub fn in_device_window(addr: u64) -> bool {
    (DEVICE_WINDOW..IDENTITY_LIMIT).contains(&addr)
}

/// Whether all of `range` lies in one of the uncached device windows:
/// registers a driver may touch without faulting or reaching RAM.
pub fn device_range_mapped(range: Range<u64>) -> bool {
    DEVICE_WINDOWS.iter().any(|w| w.start <= range.start && range.end <= w.end && range.start < range.end)
}

/// The 2 MiB-aligned part of a RAM range (below the device windows).
fn huge_part(ram: Range<u64>) -> Range<u64> {
    ram.start.next_multiple_of(HUGE)..heap_limit(ram.end) & !(HUGE - 1)
}

/// Where a heap in RAM ending at `ram_end` must end: at a page boundary,
/// below the PCI window.
pub fn heap_limit(ram_end: u64) -> u64 {
    ram_end.min(layout::PCI_WINDOW.start) & !(PAGE - 1)
}

/// Page tables for 4 KiB mappings, each covering 2 MiB, indexed by address.
const FINE_TABLES: usize = 8;
/// The end of the range mapped with 4 KiB pages: the image, the stack and
/// the start of the heap must end below it.
pub const FINE_LIMIT: u64 = FINE_TABLES as u64 * HUGE;

// The linker script refuses an image that ends above `FINE_LIMIT`
// (`ASSERT(__image_end <= __fine_limit, ...)`): a symbol whose address is
// the limit keeps its one home here.
core::arch::global_asm!(".globl __fine_limit", ".set __fine_limit, {limit}", limit = const FINE_LIMIT);

static PML4: BootCell<PageTable> = BootCell::new(PageTable::new());
static PDPT: BootCell<PageTable> = BootCell::new(PageTable::new());
static PDS: BootCell<[PageTable; 4]> = BootCell::new([const { PageTable::new() }; 4]);
/// One per 2 MiB below `FINE_LIMIT`, plus one for the heap's last, partial
/// 2 MiB when RAM does not end on a 2 MiB boundary above it.
static PTS: BootCell<[PageTable; FINE_TABLES + 1]> = BootCell::new([const { PageTable::new() }; FINE_TABLES + 1]);
static MAIN_STACK_GUARD: AtomicU64 = AtomicU64::new(u64::MAX);

/// The page tables being written, before they are loaded.
struct Tables {
    pds: &'static mut [PageTable; 4],
    pts: &'static mut [PageTable; FINE_TABLES + 1],
}

impl Tables {
    /// The page-directory entry that maps the 2 MiB region at `addr`.
    fn pd_entry(&mut self, addr: u64) -> &mut PageTableEntry {
        &mut self.pds[(addr >> 30) as usize][((addr >> 21) & 511) as usize]
    }

    /// Identity-maps `range` with 2 MiB pages, leaving alone any 2 MiB
    /// already mapped with 4 KiB pages. Only mapped regions are visited, and
    /// each size through one loop: under emulation every distinct block and
    /// every iteration costs boot time.
    #[inline(never)]
    fn map_huge(&mut self, range: Range<u64>, flags: F) {
        for addr in range.step_by(HUGE as usize) {
            let entry = self.pd_entry(addr);
            if entry.is_unused() {
                entry.set_addr(phys(addr), flags | F::HUGE_PAGE);
            }
        }
    }

    /// Identity-maps `range` with 4 KiB pages.
    #[inline(never)]
    fn map_small(&mut self, range: Range<u64>, flags: F) {
        let mut addr = range.start;
        while addr < range.end {
            let block = addr & !(HUGE - 1);
            let index = if block < FINE_LIMIT { (block / HUGE) as usize } else { FINE_TABLES };
            let table_phys = table_addr(&self.pts[index]);
            let entry = self.pd_entry(block);
            if entry.is_unused() {
                entry.set_addr(table_phys, F::PRESENT | F::WRITABLE);
            }
            // `assert!`, not `assert_eq!`: the latter links `Debug` padding
            // machinery into every image for a message no clearer than this.
            assert!(entry.addr() == table_phys, "two 2 MiB regions above FINE_LIMIT mapped with 4 KiB pages");
            let table = &mut self.pts[index];
            let end = range.end.min(block + HUGE);
            while addr < end {
                table[((addr >> 12) & 511) as usize].set_addr(phys(addr), flags);
                addr += PAGE;
            }
        }
    }

    fn unmap(&mut self, page: u64) {
        let index = ((page >> 12) & 511) as usize;
        // The page lies below FINE_LIMIT: it is in the image or a stack.
        self.pts[(page / HUGE) as usize][index].set_unused();
    }
}

fn table_addr(table: *const PageTable) -> PhysAddr {
    // Identity mapping: a table's virtual address is its physical address.
    phys(table as u64)
}

/// The physical address `addr`. Every address mapped here is below 4 GiB
/// (RAM, the image, the device windows), so nothing is truncated, and the
/// checking `PhysAddr::new` would only link a panic path into every image.
fn phys(addr: u64) -> PhysAddr {
    PhysAddr::new_truncate(addr)
}

/// The 4 KiB mappings of low memory, the image and the stacks, as address
/// runs with their permissions. Page 0 stays unmapped (null pointers), and
/// `init` unmaps the guard pages below the boot and main stacks.
fn fine_runs(plan: &Plan) -> [(Range<u64>, F); 5] {
    let rw_nx = F::PRESENT | F::WRITABLE | F::NO_EXECUTE;
    [
        (PAGE..layout::image_start(), rw_nx),
        (layout::image_start()..layout::text_end(), F::PRESENT),
        (layout::text_end()..layout::rodata_end(), F::PRESENT | F::NO_EXECUTE),
        (layout::rodata_end()..layout::image_end(), rw_nx),
        (plan.stack.clone(), rw_nx),
    ]
}

pub fn init(plan: &Plan, info: &StartInfo) {
    MAIN_STACK_GUARD.store(plan.stack_guard, Ordering::Relaxed);
    let table = F::PRESENT | F::WRITABLE;
    let rw_nx = F::PRESENT | F::WRITABLE | F::NO_EXECUTE;
    // SAFETY: boot runs on one CPU with interrupts off, before anything else
    // can reach these tables; the boot tables stay live until Cr3::write.
    unsafe {
        let (pml4, pdpt) = (&mut *PML4.get(), &mut *PDPT.get());
        let mut tables = Tables { pds: &mut *PDS.get(), pts: &mut *PTS.get() };
        pml4[0].set_addr(table_addr(pdpt), table);
        for (gib, pd) in tables.pds.iter().enumerate() {
            pdpt[gib].set_addr(table_addr(pd), table);
        }
        for (range, flags) in fine_runs(plan) {
            tables.map_small(range, flags);
        }
        // The heap: 4 KiB pages up to the first and from the last 2 MiB
        // boundary, 2 MiB pages between.
        let heap = &plan.heap;
        let middle = huge_part(heap.clone());
        if middle.is_empty() {
            tables.map_small(heap.clone(), rw_nx);
        } else {
            tables.map_small(heap.start..middle.start, rw_nx);
            tables.map_huge(middle.clone(), rw_nx);
            tables.map_small(middle.end..heap.end, rw_nx);
        }
        for ram in info.ram() {
            tables.map_huge(huge_part(ram), rw_nx);
        }
        for window in DEVICE_WINDOWS {
            tables.map_huge(window, rw_nx | F::NO_CACHE | F::WRITE_THROUGH);
        }
        tables.unmap(layout::boot_stack_guard());
        tables.unmap(plan.stack_guard);
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
    let pds = unsafe { &*PDS.get() };
    let pde = &pds[(addr >> 30) as usize][((addr >> 21) & 511) as usize];
    if !pde.flags().contains(F::PRESENT) {
        return false;
    }
    if pde.flags().contains(F::HUGE_PAGE) {
        return true;
    }
    // SAFETY: a present, non-huge entry points to one of `PTS`, identity
    // mapped.
    let pt = unsafe { &*(pde.addr().as_u64() as *const PageTable) };
    pt[((addr >> 12) & 511) as usize].flags().contains(F::PRESENT)
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
