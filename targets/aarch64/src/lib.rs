//! Bare-metal aarch64 boot for the unikernel framework, on QEMU's `virt`
//! machine (and any loader that enters an ELF at EL1 with the device tree
//! at the start of RAM or in `x0`).
//!
//! [`boot`]'s entry turns on FP/SIMD, the exception vectors and the MMU
//! with a coarse boot map; [`boot_main`] then reads the device tree
//! (memory, command line, console, interrupt controller, RTC, PSCI,
//! virtio-mmio), maps the image W^X with guard pages, sets up the heap and
//! runs the application on its own guarded stack.
#![no_std]
#![cfg(all(target_os = "none", target_arch = "aarch64"))]

mod boot;
mod bus;
mod clock;
mod console;
mod critical_section;
mod devicetree;
mod exceptions;
mod gic;
mod layout;
mod memory;
mod paging;
mod platform;
mod psci;
mod random;
mod stack;

use unikernel_core::runtime::{app, boot_failed};

/// Rust entry, called by `boot.rs` with the MMU on (boot map), on the boot
/// stack, with the device tree's address from the loader (0 when the
/// loader follows QEMU's bare-metal convention of the start of RAM).
extern "C" fn boot_main(dtb: u64) -> ! {
    unikernel_core::platform::install(&platform::Aarch64);
    let machine = match devicetree::read(dtb) {
        Ok(machine) => machine,
        Err(e) => boot_failed(&e),
    };
    console::init(machine.uart);
    psci::set_conduit(machine.psci);
    unikernel_core::cmdline::set(machine.cmdline);
    let plan = match memory::plan(machine.ram.clone(), &app().config) {
        Ok(plan) => plan,
        Err(e) => boot_failed(&e),
    };
    if let Err(e) = paging::init(&plan, &machine) {
        boot_failed(&e)
    }
    // SAFETY: the plan reserves this range for the heap alone, and paging
    // maps it read+write.
    unsafe { unikernel_core::heap::init(plan.heap.start as *mut u8, (plan.heap.end - plan.heap.start) as usize) };
    stack::set_main_stack(plan.stack_guard, plan.stack.end);
    stack::run_on_main_stack(run_app)
}

fn run_app() -> ! {
    unikernel_core::runtime::start(app())
}
