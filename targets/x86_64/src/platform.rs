//! The bare-metal [`Platform`]: COM1 console, `isa-debug-exit` (else the
//! status on the console and a reset), the heap;
//! and its [`Clock`]: the TSC, and `hlt` until the APIC timer or a device.

use crate::{boot, clock, reset, serial, stack};
use unikernel_core::time::{self, Clock};
use unikernel_core::{Platform, exit, println};
use x86_64::instructions::port::Port;

/// QEMU's `isa-debug-exit`: the image's record asks the runner for it at
/// this port; the guest writes `exit::device_value(status)` there.
const DEBUG_EXIT_PORT: u16 = 0xf4;

unikernel_core::vmm_records!(unikernel_core::vmm::Record::exit_port(DEBUG_EXIT_PORT, "x86_64").required());

pub struct X86_64;

impl Platform for X86_64 {
    fn write(&self, bytes: &[u8]) {
        serial::write(bytes);
    }

    fn exit(&self, code: u8) -> ! {
        // SAFETY: without the device the write is ignored; with it QEMU exits.
        unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(exit::device_value(code)) };
        println!("{}", exit::ConsoleLine(code));
        reset::machine()
    }

    fn restart(&self, f: fn() -> !) -> ! {
        stack::run_on_main_stack(f)
    }

    fn boot_cycles(&self) -> Option<u64> {
        Some(boot::cycles_since_entry())
    }
}

unikernel_core::time::implement!(Clock for X86_64);

/// Linked only into images that read the time or wait: the first call
/// brings up the APICs and calibrates the clock (see `clock`).
impl Clock for X86_64 {
    fn now_ns() -> u64 {
        clock::get().now_ns()
    }

    fn unix_time_ns() -> u64 {
        clock::get().unix_ns()
    }

    fn idle(deadline_ns: Option<u64>, still_idle: &dyn Fn() -> bool) {
        let clock = clock::get();
        // Interrupts are off outside this function, so nothing can change
        // `still_idle` between the check and the halt.
        match time::before_idle(deadline_ns, still_idle) {
            None => return,
            Some(Some(ns)) => clock.arm_timer(ns),
            Some(None) => {}
        }
        // `sti; hlt`: an interrupt arriving right after `sti` still ends the halt.
        x86_64::instructions::interrupts::enable_and_hlt();
        x86_64::instructions::interrupts::disable();
    }
}
