//! Snapshot restore: a guest resumed from a snapshot (QEMU's migration
//! file) wakes with the memory of the moment it was saved, and so does
//! every other guest restored from the same file. Whatever was derived
//! from that moment must be redone: seeds of generators, the wall clock,
//! addresses and neighbours learnt from the network, connections.
//!
//! The VMM tells the guest it was restored with [`SIGNAL`] on the console's
//! receive side (on x86_64, COM1's interrupt): a channel every image
//! already has, unlike QEMU's `vmgenid`, which needs ACPI. The target
//! first fixes its clocks (the wall clock re-read from the RTC; the
//! monotonic clock continues from the snapshot, as the VMM stops it while
//! the guest is saved), then calls [`restored`], which runs each hook
//! registered with [`on_restore`]. Hooks run in the interrupt handler:
//! they set flags and wake tasks, which redo the work.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The byte the VMM writes to the console's input after a restore (ASCII
/// ENQ); the guest ignores any other input.
pub const SIGNAL: u8 = 0x05;

/// Hooks at most: one per component that keeps such state, and the app's.
const HOOKS: usize = 8;

static HOOK: [AtomicUsize; HOOKS] = [const { AtomicUsize::new(0) }; HOOKS];
static RESTORES: AtomicU64 = AtomicU64::new(0);

/// Calls `hook` after each restore, from the interrupt handler that learns
/// of it (with interrupts off: set a flag, wake a task). Fails when every
/// slot is taken.
pub fn on_restore(hook: fn()) -> Result<(), crate::Error> {
    let free = HOOK.iter().find(|s| s.compare_exchange(0, hook as usize, Ordering::AcqRel, Ordering::Acquire).is_ok());
    free.map(drop).ok_or_else(|| crate::Error::msg("no room for another restore hook"))
}

/// Called by the target once its clocks are right again: counts the
/// restore and runs the hooks.
pub fn restored() {
    let n = RESTORES.fetch_add(1, Ordering::AcqRel) + 1;
    log::info!("restore: resumed from a snapshot (restore {n}); refreshing what the snapshot froze");
    for slot in &HOOK {
        let hook = slot.load(Ordering::Acquire);
        if hook != 0 {
            // SAFETY: only `on_restore` stores into HOOK, and only `fn()` values.
            let hook = unsafe { core::mem::transmute::<usize, fn()>(hook) };
            hook();
        }
    }
}

/// Restores since boot (0 in a guest that booted, or has not been told yet).
pub fn count() -> u64 {
    RESTORES.load(Ordering::Acquire)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU32;

    static CALLS: AtomicU32 = AtomicU32::new(0);

    fn hook() {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn each_restore_counts_and_runs_every_hook_once() {
        on_restore(hook).unwrap();
        on_restore(hook).unwrap();
        restored();
        restored();
        assert_eq!(count(), 2);
        assert_eq!(CALLS.load(Ordering::Relaxed), 4);
        while on_restore(hook).is_ok() {}
        assert_eq!(HOOK.iter().filter(|h| h.load(Ordering::Relaxed) != 0).count(), HOOKS);
    }
}
