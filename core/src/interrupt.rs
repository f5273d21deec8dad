//! Device interrupts: a driver registers a handler for its interrupt line;
//! the target routes the line and calls [`dispatch`] from its interrupt
//! entry. Handlers run while the executor halts (interrupts are enabled
//! only there), so they may take locks and wake tasks, typically through a
//! `futures::task::AtomicWaker`.

use crate::Error;
use crate::bus::{self, Line, MsiMessage};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Interrupt lines the runtime has handler slots for: the target's wired
/// lines and its message-signalled ones ([`bus::Bus::msi_lines`]).
pub const LINES: usize = 32;

static HANDLERS: [AtomicUsize; LINES] = [const { AtomicUsize::new(0) }; LINES];
static UNEXPECTED: AtomicU64 = AtomicU64::new(0);

crate::__declare_metric!(Counter; pub static INTERRUPTS = "unikernel_interrupts_total", "Device interrupts handled since boot.");
crate::__declare_metric!(Counter;
    pub static INTERRUPTS_UNEXPECTED = "unikernel_interrupts_unexpected_total",
    "Interrupts that arrived with no handler since boot.",
    read = unexpected
);

/// Calls `handler` on each interrupt of the wired line `irq`.
pub fn register(irq: u8, handler: fn()) -> Result<(), Error> {
    let slot = HANDLERS
        .get(usize::from(irq))
        .filter(|_| !bus::msi_lines().contains(&irq))
        .ok_or_else(|| Error::msg("interrupt line out of range"))?;
    if slot.compare_exchange(0, handler as usize, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err(Error::msg("interrupt line already has a handler"));
    }
    bus::enable_line(Line(irq)).inspect_err(|_| slot.store(0, Ordering::Release))
}

/// A message-signalled interrupt: the line it arrives on (handy in logs)
/// and the message the device writes to raise it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msi {
    /// The line the interrupt arrives on.
    pub line: Line,
    /// What the device writes to raise it.
    pub message: MsiMessage,
}

/// Calls `handler` on each message-signalled interrupt described by the
/// returned [`Msi`], which the driver programs into its device.
pub fn register_msi(handler: fn()) -> Result<Msi, Error> {
    let lines = bus::msi_lines();
    for line in lines.start..lines.end.min(LINES as u8) {
        let slot = &HANDLERS[usize::from(line)];
        if slot.compare_exchange(0, handler as usize, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return match bus::msi_message(Line(line)) {
                Some(message) => Ok(Msi { line: Line(line), message }),
                None => {
                    slot.store(0, Ordering::Release);
                    Err(Error::msg("this target has no message-signalled interrupts"))
                }
            };
        }
    }
    Err(Error::msg("no message-signalled interrupt line is free"))
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
    INTERRUPTS.inc();
    crate::trace_event!(InterruptStart, irq, 0);
    handler();
    crate::trace_event!(InterruptEnd, irq, 0);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Bus, FixedDevice};
    use core::ops::Range;
    use core::sync::atomic::AtomicU32;

    /// A platform with wired lines below 28, message lines from 28, and a
    /// wired line 7 it cannot route.
    struct FakeBus;
    static ENABLED: AtomicU32 = AtomicU32::new(0);
    const UNROUTABLE: u8 = 7;

    crate::bus_implement!(Bus for FakeBus);

    impl Bus for FakeBus {
        fn fixed_devices(_: &mut dyn FnMut(FixedDevice)) {}
        fn enable_line(line: Line) -> Result<(), Error> {
            if line.0 == UNROUTABLE {
                return Err(Error::msg("unroutable"));
            }
            ENABLED.fetch_or(1 << line.0, Ordering::Relaxed);
            Ok(())
        }
        fn msi_lines() -> Range<u8> {
            28..40 // past LINES on purpose: the runtime's table bounds it
        }
        fn msi_message(line: Line) -> Option<MsiMessage> {
            Some(MsiMessage { address: 0x1000 + u64::from(line.0), data: u32::from(line.0) * 2 })
        }
    }

    fn handler() {}

    #[test]
    fn wired_lines_are_enabled_through_the_bus_once() {
        register(5, handler).unwrap();
        assert_ne!(ENABLED.load(Ordering::Relaxed) & 1 << 5, 0);
        assert!(register(5, handler).is_err(), "a second handler on one line");
        assert!(dispatch(5));
    }

    #[test]
    fn message_lines_are_not_wired_lines() {
        assert!(register(30, handler).is_err());
        assert_eq!(ENABLED.load(Ordering::Relaxed) & 1 << 30, 0);
    }

    #[test]
    fn a_line_the_bus_cannot_route_keeps_no_handler() {
        assert!(register(UNROUTABLE, handler).is_err());
        assert!(!dispatch(UNROUTABLE));
    }

    #[test]
    fn message_lines_come_from_the_bus_and_stop_at_the_table() {
        let taken: Vec<Msi> = core::iter::from_fn(|| register_msi(handler).ok()).collect();
        let lines: Vec<u8> = taken.iter().map(|m| m.line.0).collect();
        assert_eq!(lines, (28..LINES as u8).collect::<Vec<_>>());
        assert_eq!(taken[0].message, MsiMessage { address: 0x1000 + 28, data: 56 });
        assert!(dispatch(28));
    }
}
