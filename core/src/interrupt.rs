//! Device interrupts: a driver registers a handler for its interrupt line;
//! the target routes the line and calls [`dispatch`] from its interrupt
//! entry. Handlers run while the executor halts (interrupts are enabled
//! only there), so they may take locks and wake tasks, typically through a
//! `futures::task::AtomicWaker`.

use crate::{Error, platform};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Interrupt lines: those of the first I/O APIC, then message-signalled
/// ones (MSI-X), which [`register_msi`] hands out.
pub const LINES: usize = 32;
/// The first line that is message-signalled rather than wired.
pub const FIRST_MSI_LINE: u8 = 24;

static HANDLERS: [AtomicUsize; LINES] = [const { AtomicUsize::new(0) }; LINES];
static UNEXPECTED: AtomicU64 = AtomicU64::new(0);

/// Calls `handler` on each interrupt of line `irq` (an ISA IRQ or GSI).
pub fn register(irq: u8, handler: fn()) -> Result<(), Error> {
    let slot = HANDLERS
        .get(usize::from(irq))
        .filter(|_| irq < FIRST_MSI_LINE)
        .ok_or_else(|| Error::msg("interrupt line out of range"))?;
    if slot.compare_exchange(0, handler as usize, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err(Error::msg("interrupt line already has a handler"));
    }
    platform::get().enable_irq(irq).inspect_err(|_| slot.store(0, Ordering::Release))
}

/// Where and what a device writes to raise a message-signalled interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msi {
    /// The line it arrives on (handy in logs).
    pub line: u8,
    pub address: u64,
    pub data: u32,
}

/// Calls `handler` on each message-signalled interrupt described by the
/// returned [`Msi`], which the driver programs into its device.
pub fn register_msi(handler: fn()) -> Result<Msi, Error> {
    for line in FIRST_MSI_LINE..LINES as u8 {
        let slot = &HANDLERS[usize::from(line)];
        if slot.compare_exchange(0, handler as usize, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return match platform::get().msi(line) {
                Some((address, data)) => Ok(Msi { line, address, data }),
                None => {
                    slot.store(0, Ordering::Release);
                    Err(Error::msg("this target has no message-signalled interrupts"))
                }
            };
        }
    }
    Err(Error::msg("all message-signalled interrupt lines are taken"))
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
