//! The GICv3, through the `arm-gic` crate (Google's driver, used by
//! Android's pVM firmware): brought up on first use, so images without
//! timers or devices link none of it. One CPU, group 1, affinity routing
//! to it; interrupts arrive only while the executor idles.

use crate::devicetree;
use arm_gic::gicv3::registers::{Gicd, GicrSgi};
use arm_gic::gicv3::{GicCpuInterface, GicV3};
use arm_gic::{IntId, InterruptGroup, Trigger, UniqueMmioPointer};
use core::ptr::NonNull;
use spin::{Mutex, Once};

static GIC: Once<Mutex<GicV3<'static>>> = Once::new();

fn fail(why: core::fmt::Arguments<'_>) -> ! {
    unikernel_core::println!("{why}");
    unikernel_core::exit::exit(unikernel_core::exit::FAILURE)
}

fn gic() -> &'static Mutex<GicV3<'static>> {
    GIC.call_once(|| {
        let Some(frames) = devicetree::gic() else {
            fail(format_args!("the device tree names no GICv3 interrupt controller (QEMU: -M virt,gic-version=3)"))
        };
        let (Some(distributor), Some(redistributors)) =
            (NonNull::new(frames.distributor as *mut Gicd), NonNull::new(frames.redistributors as *mut GicrSgi))
        else {
            fail(format_args!("the device tree puts the GIC at address 0"))
        };
        // SAFETY: the frames are the GIC's, as the device tree says, mapped
        // as device memory (everything below RAM is); this is the only
        // driver instance (`Once`).
        let mut gic = match unsafe { GicV3::new(UniqueMmioPointer::new(distributor), redistributors, 1) } {
            Ok(gic) => gic,
            Err(e) => fail(format_args!("GICv3: {e}")),
        };
        gic.setup(0);
        GicCpuInterface::set_priority_mask(0xff);
        crate::exceptions::set_irq_handler(handle);
        Mutex::new(gic)
    })
}

/// Enables `intid`, routed to this CPU.
pub fn enable(intid: IntId, trigger: Trigger) -> Result<(), arm_gic::gicv3::GicError> {
    let mut gic = gic().lock();
    gic.set_trigger(intid, Some(0), trigger)?;
    gic.enable_interrupt(intid, Some(0), true)
}

/// The IRQ exception: acknowledge, run the line's handler, end.
fn handle() {
    let Some(intid) = GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1) else {
        unikernel_core::interrupt::count_unexpected();
        return;
    };
    if intid == crate::clock::TIMER {
        crate::clock::timer_fired();
    } else if let Some(line) = crate::bus::line_of(intid) {
        if !unikernel_core::interrupt::dispatch(line) {
            unikernel_core::println!("interrupt: line {line} fired with no handler");
        }
    } else {
        unikernel_core::interrupt::count_unexpected();
        unikernel_core::println!("interrupt: unexpected {intid:?} ignored");
    }
    GicCpuInterface::end_interrupt(intid, InterruptGroup::Group1);
}
