//! RDRAND/RDSEED for [`unikernel_core::bus::CpuRandom`]. Both may
//! transiently fail (carry flag clear) when the hardware is drained;
//! Intel's guidance is to retry a bounded number of times and then report
//! an error, never to return unrandom bytes.

use core::arch::x86_64::{__cpuid, __cpuid_count, _rdseed64_step};
use unikernel_core::bus::{CpuRandom, RandomKind};
use x86_64::instructions::random::RdRand;

const RDRAND_RETRIES: usize = 10;
const RDSEED_RETRIES: usize = 1000;

struct X86Random;

unikernel_core::bus::implement!(CpuRandom for X86Random);

/// Asked once: CPUID exits to the hypervisor, which is slow under KVM.
fn has_rdseed() -> bool {
    static HAS: spin::Once<bool> = spin::Once::new();
    // CPUID leaf 7 exists if leaf 0 says so; EBX bit 18 is RDSEED.
    *HAS.call_once(|| __cpuid(0).eax >= 7 && __cpuid_count(7, 0).ebx & (1 << 18) != 0)
}

impl CpuRandom for X86Random {
    fn available(kind: RandomKind) -> bool {
        match kind {
            RandomKind::Drbg => RdRand::new().is_some(),
            RandomKind::Seed => has_rdseed(),
        }
    }

    fn next(kind: RandomKind) -> Option<u64> {
        match kind {
            RandomKind::Drbg => {
                let rdrand = RdRand::new()?;
                (0..RDRAND_RETRIES).find_map(|_| rdrand.get_u64())
            }
            RandomKind::Seed if has_rdseed() => (0..RDSEED_RETRIES).find_map(|_| {
                let mut value = 0;
                // SAFETY: the CPU has RDSEED (checked just above).
                (unsafe { rdseed(&mut value) } == 1).then_some(value).or_else(|| {
                    core::hint::spin_loop();
                    None
                })
            }),
            RandomKind::Seed => None,
        }
    }
}

#[target_feature(enable = "rdseed")]
unsafe fn rdseed(value: &mut u64) -> i32 {
    _rdseed64_step(value)
}
