//! Bare-metal x86_64 boot for the unikernel framework.
//!
//! QEMU (or any PVH loader) enters [`boot`]'s 32-bit code through the
//! `XEN_ELFNOTE_PHYS32_ENTRY` note; from there: long mode on boot page
//! tables, then [`boot_main`] sets up serial, GDT/TSS, IDT, W^X paging and
//! the heap, and runs the application on its own guarded stack.
#![no_std]
#![cfg(all(target_os = "none", target_arch = "x86_64"))]

mod apic;
mod boot;
mod boot_cell;
mod bus;
mod clock;
mod critical_section;
mod gdt;
mod interrupts;
mod ioapic;
mod layout;
mod memory;
mod paging;
mod pit;
mod platform;
mod random;
mod reset;
mod rtc;
mod serial;
mod stack;
mod start_info;

use unikernel_core::runtime::{app, boot_failed};

/// Rust entry, called by `boot.rs` in long mode on the boot stack with the
/// physical address of PVH's `hvm_start_info`.
extern "C" fn boot_main(start_info: u32) -> ! {
    unikernel_core::platform::install(&platform::X86_64);
    gdt::init();
    interrupts::init();
    // SAFETY: the PVH loader passes the address of a valid start info.
    let info = match unsafe { start_info::StartInfo::from_paddr(start_info) } {
        Ok(info) => info,
        Err(e) => boot_failed(&e),
    };
    unikernel_core::cmdline::set(info.cmdline());
    let plan = match memory::plan(&info, &app().config) {
        Ok(plan) => plan,
        Err(e) => boot_failed(&e),
    };
    paging::init(&plan, &info);
    // SAFETY: the plan reserves this range for the heap alone, and paging
    // maps it read+write.
    unsafe { unikernel_core::heap::init(plan.heap.start as *mut u8, (plan.heap.end - plan.heap.start) as usize) };
    stack::set_main_stack_top(plan.stack.end);
    stack::run_on_main_stack(run_app)
}

fn run_app() -> ! {
    unikernel_core::runtime::start(app())
}
