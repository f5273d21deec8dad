//! The stack `main` runs on: allocated by `memory::plan` with an unmapped
//! guard page below it. The code runs on SP_EL0 while exceptions and
//! interrupts take SP_EL1, which stays on the boot stack: a fault on the
//! guard page is reported from a stack that still has room.

use core::sync::atomic::{AtomicU64, Ordering};

static MAIN_STACK_TOP: AtomicU64 = AtomicU64::new(0);
static MAIN_STACK_GUARD: AtomicU64 = AtomicU64::new(0);

pub fn set_main_stack(guard: u64, top: u64) {
    MAIN_STACK_GUARD.store(guard, Ordering::Relaxed);
    MAIN_STACK_TOP.store(top, Ordering::Relaxed);
}

/// The main stack's guard page, once set.
pub fn main_stack_guard() -> Option<u64> {
    Some(MAIN_STACK_GUARD.load(Ordering::Relaxed)).filter(|&guard| guard != 0)
}

/// Resets the stack pointer to the top of the main stack and calls `f`.
/// Everything on the current stack is abandoned; the first call also
/// leaves the boot stack to exceptions (SP_EL1, reset to its top).
pub fn run_on_main_stack(f: fn() -> !) -> ! {
    let top = MAIN_STACK_TOP.load(Ordering::Relaxed);
    assert!(top != 0, "main stack not set up");
    // SAFETY: `top` is the 16-byte aligned end of a mapped, otherwise unused
    // stack; `f` never returns, so nothing depends on the old stacks. The
    // boot stack's top is the linker's, 16-byte aligned.
    unsafe {
        core::arch::asm!(
            "msr spsel, #1",
            "mov sp, {boot_top}",
            "msr sp_el0, {top}",
            "msr spsel, #0",
            "mov x29, xzr",
            "mov x30, xzr",
            "blr {f}",
            "udf #0",
            top = in(reg) top,
            boot_top = in(reg) crate::layout::boot_stack_top(),
            f = in(reg) f,
            options(noreturn)
        )
    }
}
