//! RDRAND/RDSEED. Both may transiently fail (carry flag clear) when the
//! hardware is drained; Intel's guidance is to retry a bounded number of
//! times and then report an error, never to return unrandom bytes.

use crate::Source;
use core::arch::x86_64::{__cpuid, __cpuid_count, _rdseed64_step};
use unikernel_core::Error;
use x86_64::instructions::random::RdRand;

const RDRAND_RETRIES: usize = 10;
const RDSEED_RETRIES: usize = 1000;

fn has_rdseed() -> bool {
    // CPUID leaf 7 exists if leaf 0 says so; EBX bit 18 is RDSEED.
    __cpuid(0).eax >= 7 && __cpuid_count(7, 0).ebx & (1 << 18) != 0
}

pub fn check(source: Source) -> Result<(), Error> {
    match source {
        Source::RdRand if RdRand::new().is_none() => {
            Err(Error::msg("this CPU has no RDRAND: run QEMU with `-cpu max` (TCG) or `-cpu host` (KVM)"))
        }
        Source::RdSeed if !has_rdseed() => {
            Err(Error::msg("this CPU has no RDSEED: run QEMU with `-cpu max` (TCG) or `-cpu host` (KVM)"))
        }
        _ => Ok(()),
    }
}

fn next(source: Source) -> Option<u64> {
    match source {
        Source::RdRand => {
            let rdrand = RdRand::new()?;
            (0..RDRAND_RETRIES).find_map(|_| rdrand.get_u64())
        }
        Source::RdSeed => (0..RDSEED_RETRIES).find_map(|_| {
            let mut value = 0;
            // SAFETY: `check` verified the CPU supports RDSEED before the
            // component started, and handles exist only after that.
            (unsafe { rdseed(&mut value) } == 1).then_some(value).or_else(|| {
                core::hint::spin_loop();
                None
            })
        }),
    }
}

#[target_feature(enable = "rdseed")]
unsafe fn rdseed(value: &mut u64) -> i32 {
    _rdseed64_step(value)
}

pub fn fill(source: Source, buf: &mut [u8]) -> Result<(), Error> {
    for chunk in buf.chunks_mut(8) {
        let value = next(source).ok_or_else(|| Error::msg("the CPU's random number generator kept failing"))?;
        chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
    }
    Ok(())
}
