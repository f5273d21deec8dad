//! The `critical-section` implementation for one core: interrupts off,
//! restored to their previous state on release (sections nest). Used by
//! `embassy-sync`'s primitives (`unikernel::sync::Channel`, ...) and by any
//! library the application links that needs a critical section.

use x86_64::instructions::interrupts;

struct SingleCore;

critical_section::set_impl!(SingleCore);

// SAFETY: with interrupts disabled on the only core nothing else runs until
// `release` restores the state `acquire` found, so sections are exclusive;
// an inner section's release keeps them off for the outer one.
unsafe impl critical_section::Impl for SingleCore {
    unsafe fn acquire() -> critical_section::RawRestoreState {
        let enabled = interrupts::are_enabled();
        interrupts::disable();
        enabled
    }

    unsafe fn release(was_enabled: critical_section::RawRestoreState) {
        if was_enabled {
            interrupts::enable();
        }
    }
}
