//! The bare-metal [`Platform`]: COM1 console, `isa-debug-exit` (else the
//! status on the console and a reset), the heap;
//! and its [`Clock`]: the TSC, and `hlt` until the APIC timer or a device.

use crate::{boot, clock, reset, serial, stack};
use unikernel_core::time::Clock;
use unikernel_core::{Error, Platform, exit, heap, interrupt, println};
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

    fn free_memory(&self) -> Option<usize> {
        Some(heap::stats().free)
    }

    fn catch_panic(&self, _: fn() -> Result<(), Error>) -> Option<Result<(), Error>> {
        None
    }

    fn restart(&self, f: fn() -> !) -> ! {
        stack::run_on_main_stack(f)
    }

    fn boot_cycles(&self) -> Option<u64> {
        Some(boot::cycles_since_entry())
    }

    /// One CPU: wakers run on it, in a task or in an interrupt handler
    /// that ends the halt by itself.
    fn notify(&self) {}

    fn on_executor_thread(&self) -> bool {
        true
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
        // `still_idle` between this check and the halt.
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
        // `sti; hlt`: an interrupt arriving right after `sti` still ends the halt.
        x86_64::instructions::interrupts::enable_and_hlt();
        x86_64::instructions::interrupts::disable();
    }
}
