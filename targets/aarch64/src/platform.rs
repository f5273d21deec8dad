//! The bare-metal [`Platform`]: PL011 console, exit through PSCI with the
//! status on the console first, the heap; and its [`Clock`]: the generic
//! timer, and `wfi` until the timer or a device interrupts.

use crate::{clock, console, psci, stack};
use unikernel_core::time::{self, Clock};
use unikernel_core::{Platform, exit, println};

pub struct Aarch64;

impl Platform for Aarch64 {
    fn write(&self, bytes: &[u8]) {
        console::write(bytes);
    }

    fn exit(&self, code: u8) -> ! {
        println!("{}", exit::ConsoleLine(code));
        psci::system_off()
    }

    fn restart(&self, f: fn() -> !) -> ! {
        stack::run_on_main_stack(f)
    }

    /// The counter starts at the machine's reset, not at the first
    /// instruction, and counts time rather than cycles.
    fn boot_cycles(&self) -> Option<u64> {
        None
    }
}

unikernel_core::time::implement!(Clock for Aarch64);

/// Linked only into images that read the time or wait: the first call
/// brings up the GIC and the timer (see `clock`).
impl Clock for Aarch64 {
    fn now_ns() -> u64 {
        clock::get().now_ns()
    }

    fn unix_time_ns() -> u64 {
        clock::get().unix_ns()
    }

    fn idle(deadline_ns: Option<u64>, still_idle: &dyn Fn() -> bool) {
        let clock = clock::get();
        // IRQs are masked outside the wait below, so nothing can change
        // `still_idle` between the check and the `wfi`.
        match time::before_idle(deadline_ns, still_idle) {
            None => return,
            Some(Some(ns)) => clock.arm_timer(ns),
            Some(None) => {}
        }
        // A pending IRQ ends `wfi` even while masked; unmasking then takes
        // it (and any other pending one) before masking again. The block
        // clobbers every caller-saved register, so the handler need not
        // save the interrupted FP/SIMD state.
        // SAFETY: the vectors are installed and the handler returns.
        unsafe { core::arch::asm!("wfi", "msr daifclr, #2", "isb", "msr daifset, #2", clobber_abi("C")) };
    }
}
