//! GDT with a TSS whose first IST stack catches double faults, so a stack
//! overflow is reported instead of becoming a triple fault.

use crate::boot_cell::BootCell;
use x86_64::VirtAddr;
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot (0-based, as the TSS array counts) for double faults.
pub const DOUBLE_FAULT_IST: u16 = 0;
const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(align(16))]
struct IstStack(#[expect(dead_code, reason = "only its address is used")] [u8; IST_STACK_SIZE]);
static mut DOUBLE_FAULT_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);

static TSS: BootCell<TaskStateSegment> = BootCell::new(TaskStateSegment::new());
static GDT: BootCell<GlobalDescriptorTable> = BootCell::new(GlobalDescriptorTable::new());

pub fn init() {
    // SAFETY: runs once during boot, on one CPU, before the CPU uses either
    // table; afterwards they are only read.
    let (tss, gdt) = unsafe { (&mut *TSS.get(), &mut *GDT.get()) };
    let top = (&raw const DOUBLE_FAULT_STACK) as u64 + IST_STACK_SIZE as u64;
    tss.interrupt_stack_table[DOUBLE_FAULT_IST as usize] = VirtAddr::new(top);
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_selector = gdt.append(Descriptor::tss_segment(tss));
    // The boot GDT (boot.rs) has the same code and data descriptors at the
    // same selectors, so CS, DS, ES and SS stay valid across the switch and
    // are not reloaded: a far return and three segment loads are slow under
    // emulation.
    assert!(code.0 == 0x08 && data.0 == 0x10, "selectors must match the boot GDT in boot.rs");
    gdt.load();
    // SAFETY: the selector indexes the TSS descriptor of the GDT just loaded.
    unsafe { load_tss(tss_selector) };
}
