//! GDT with a TSS whose first IST stack catches double faults, so a stack
//! overflow is reported instead of becoming a triple fault.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot (0-based, as the `x86_64` crate counts) for double faults.
pub const DOUBLE_FAULT_IST: u16 = 0;
const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(align(16))]
struct IstStack(#[expect(dead_code, reason = "only its address is used")] [u8; IST_STACK_SIZE]);
static mut DOUBLE_FAULT_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<(GlobalDescriptorTable, SegmentSelector, SegmentSelector, SegmentSelector)> = Once::new();

pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        let top = (&raw const DOUBLE_FAULT_STACK) as u64 + IST_STACK_SIZE as u64;
        tss.interrupt_stack_table[DOUBLE_FAULT_IST as usize] = VirtAddr::new(top);
        tss
    });
    let (gdt, code, data, tss_sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment(tss));
        (gdt, code, data, tss_sel)
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, with the right kinds.
    unsafe {
        CS::set_reg(*code);
        DS::set_reg(*data);
        ES::set_reg(*data);
        SS::set_reg(*data);
        load_tss(*tss_sel);
    }
}
