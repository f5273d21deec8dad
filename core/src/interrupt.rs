//! Device interrupts: a driver registers a handler for its interrupt line;
//! the target routes the line and calls [`dispatch`] from its interrupt
//! entry. Handlers run while the executor halts (interrupts are enabled
//! only there), so they may take locks and wake tasks, typically through a
//! `futures::task::AtomicWaker`.

use crate::{Error, platform};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Interrupt lines of the first I/O APIC.
pub const LINES: usize = 24;

static HANDLERS: [AtomicUsize; LINES] = [const { AtomicUsize::new(0) }; LINES];
static UNEXPECTED: AtomicU64 = AtomicU64::new(0);

/// Calls `handler` on each interrupt of line `irq` (an ISA IRQ or GSI).
pub fn register(irq: u8, handler: fn()) -> Result<(), Error> {
    let slot = HANDLERS.get(usize::from(irq)).ok_or_else(|| Error::msg("interrupt line out of range"))?;
    if slot.compare_exchange(0, handler as usize, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err(Error::msg("interrupt line already has a handler"));
    }
    platform::get().enable_irq(irq).inspect_err(|_| slot.store(0, Ordering::Release))
}

/// Runs the handler of line `irq`; returns false (and counts it as
/// unexpected) when none is registered.
pub fn dispatch(irq: u8) -> bool {
    let handler = HANDLERS.get(usize::from(irq)).map_or(0, |s| s.load(Ordering::Acquire));
    if handler == 0 {
        UNEXPECTED.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    // SAFETY: only `register` stores into HANDLERS, and only `fn()` values.
    let handler: fn() = unsafe { core::mem::transmute::<usize, fn()>(handler) };
    handler();
    true
}

/// Whether any line has a handler: with none and no timer pending, a halted
/// executor could never wake.
pub fn any_registered() -> bool {
    HANDLERS.iter().any(|h| h.load(Ordering::Acquire) != 0)
}

/// Counts an interrupt that nothing handles (a stray vector).
pub fn count_unexpected() {
    UNEXPECTED.fetch_add(1, Ordering::Relaxed);
}

/// Interrupts that arrived with no handler, since boot.
pub fn unexpected() -> u64 {
    UNEXPECTED.load(Ordering::Relaxed)
}
