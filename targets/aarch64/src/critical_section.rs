//! The `critical-section` implementation for one core: IRQs masked,
//! restored to their previous state on release (sections nest). IRQs are
//! masked everywhere but in the executor's idle wait, so this is cheap.

use aarch64_cpu::registers::{DAIF, ReadWriteable, Readable};

struct SingleCore;

critical_section::set_impl!(SingleCore);

// SAFETY: with IRQs masked on the only core nothing else runs until
// `release` restores the state `acquire` found, so sections are exclusive;
// an inner section's release keeps them masked for the outer one.
unsafe impl critical_section::Impl for SingleCore {
    unsafe fn acquire() -> critical_section::RawRestoreState {
        let unmasked = !DAIF.is_set(DAIF::I);
        DAIF.modify(DAIF::I::Masked);
        unmasked
    }

    unsafe fn release(was_unmasked: critical_section::RawRestoreState) {
        if was_unmasked {
            DAIF.modify(DAIF::I::Unmasked);
        }
    }
}
