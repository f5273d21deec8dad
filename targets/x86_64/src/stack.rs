//! The stack `main` runs on: allocated by `memory::plan` with an unmapped
//! guard page below it.

use core::sync::atomic::{AtomicU64, Ordering};

static MAIN_STACK_TOP: AtomicU64 = AtomicU64::new(0);

pub fn set_main_stack_top(top: u64) {
    MAIN_STACK_TOP.store(top, Ordering::Relaxed);
}

/// Resets the stack pointer to the top of the main stack and calls `f`.
/// Everything on the current stack is abandoned.
pub fn run_on_main_stack(f: fn() -> !) -> ! {
    let top = MAIN_STACK_TOP.load(Ordering::Relaxed);
    assert!(top != 0, "main stack not set up");
    // SAFETY: `top` is the 16-byte aligned end of a mapped, otherwise unused
    // stack; `f` never returns, so nothing depends on the old stack.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "xor ebp, ebp",
            "call {f}",
            "ud2",
            top = in(reg) top,
            f = in(reg) f,
            options(noreturn)
        )
    }
}
