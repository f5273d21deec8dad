//! The bare-metal [`Platform`]: PL011 console, exit through PSCI with the
//! status on the console first, the heap; and its [`Clock`]: the generic
//! timer, and `wfi` until the timer or a device interrupts.

use crate::{clock, console, psci, stack};
use unikernel_core::time::Clock;
use unikernel_core::{Error, Platform, exit, heap, interrupt, println};

pub struct Aarch64;

impl Platform for Aarch64 {
    fn write(&self, bytes: &[u8]) {
        console::write(bytes);
    }

    fn exit(&self, code: u8) -> ! {
        println!("{}", exit::ConsoleLine(code));
        psci::system_off()
    }

    fn free_memory(&self) -> Option<usize> {
        Some(heap::stats().free)
    }

    fn catch_panic(&self, _: fn() -> Result<(), Error>) -> Option<Result<(), Error>> {
        None
    }

    fn restart(&self, f: fn() -> !) -> ! {
        stack::run_on_main_stack(f)
    }

    /// The counter starts at the machine's reset, not at the first
    /// instruction, and counts time rather than cycles.
    fn boot_cycles(&self) -> Option<u64> {
        None
    }

    /// One CPU: wakers run on it, in a task or in an interrupt handler
    /// that ends the wait by itself.
    fn notify(&self) {}

    fn on_executor_thread(&self) -> bool {
        true
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
        // `still_idle` between this check and the `wfi`.
        if !still_idle() {
            return;
        }
        match deadline_ns {
            Some(deadline) => {
                let now = clock.now_ns();
                if deadline <= now {
                    return;
                }
                clock.arm_timer(deadline - now);
            }
            None if !interrupt::any_registered() => {
                println!("all tasks are blocked with no timer pending and no interrupt source: deadlock");
                exit::exit(exit::FAILURE)
            }
            None => {}
        }
        // A pending IRQ ends `wfi` even while masked; unmasking then takes
        // it (and any other pending one) before masking again. The block
        // clobbers every caller-saved register, so the handler need not
        // save the interrupted FP/SIMD state.
        // SAFETY: the vectors are installed and the handler returns.
        unsafe { core::arch::asm!("wfi", "msr daifclr, #2", "isb", "msr daifset, #2", clobber_abi("C")) };
    }
}
