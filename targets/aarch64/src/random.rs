//! RNDR/RNDRRS (FEAT_RNG) for [`unikernel_core::bus::CpuRandom`]: RNDR
//! reads a DRBG the hardware reseeds, RNDRRS reseeds it first. Both set
//! the Z flag when they could not deliver in reasonable time; Arm's
//! guidance, like Intel's, is to retry a bounded number of times and then
//! fail, never to use the value.

use aarch64_cpu::registers::{ID_AA64ISAR0_EL1, Readable};
use unikernel_core::bus::{CpuRandom, RandomKind};

const RETRIES: usize = 10;

struct Aarch64Random;

unikernel_core::bus::implement!(CpuRandom for Aarch64Random);

/// Asked once: a hypervisor may trap ID register reads (KVM does, to
/// show sanitized values), and `next` runs for every 8 random bytes.
fn has_rndr() -> bool {
    static HAS: spin::Once<bool> = spin::Once::new();
    *HAS.call_once(|| ID_AA64ISAR0_EL1.read(ID_AA64ISAR0_EL1::RNDR) != 0)
}

/// One read of RNDR (`reseed` false) or RNDRRS; `None` when it failed.
fn read(reseed: bool) -> Option<u64> {
    let (value, failed): (u64, u64);
    // SAFETY: the caller checked FEAT_RNG; the registers are read-only and
    // the read has no effect besides the flags (the encodings are used
    // because the assembler may not know FEAT_RNG).
    unsafe {
        if reseed {
            core::arch::asm!("mrs {v}, s3_3_c2_c4_1", "cset {f}, eq", v = out(reg) value, f = out(reg) failed, options(nomem, nostack));
        } else {
            core::arch::asm!("mrs {v}, s3_3_c2_c4_0", "cset {f}, eq", v = out(reg) value, f = out(reg) failed, options(nomem, nostack));
        }
    }
    (failed == 0).then_some(value)
}

impl CpuRandom for Aarch64Random {
    fn available(_: RandomKind) -> bool {
        has_rndr()
    }

    fn next(kind: RandomKind) -> Option<u64> {
        if !has_rndr() {
            return None;
        }
        (0..RETRIES).find_map(|_| read(kind == RandomKind::Seed))
    }
}
