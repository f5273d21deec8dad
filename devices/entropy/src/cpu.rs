//! The CPU's generator, through the target ([`unikernel_core::bus::CpuRandom`]).

use crate::Source;
use unikernel_core::Error;
use unikernel_core::bus::{self, RandomKind};

fn kind(source: Source) -> RandomKind {
    match source {
        Source::RdRand => RandomKind::Drbg,
        Source::RdSeed => RandomKind::Seed,
    }
}

pub fn check(source: Source) -> Result<(), Error> {
    match source {
        _ if bus::cpu_random_available(kind(source)) => Ok(()),
        Source::RdRand => {
            Err(Error::msg("this CPU has no RDRAND: run QEMU with `-cpu max` (TCG) or `-cpu host` (KVM)"))
        }
        Source::RdSeed => {
            Err(Error::msg("this CPU has no RDSEED: run QEMU with `-cpu max` (TCG) or `-cpu host` (KVM)"))
        }
    }
}

pub fn fill(source: Source, buf: &mut [u8]) -> Result<(), Error> {
    for chunk in buf.chunks_mut(8) {
        let value = bus::cpu_random_next(kind(source))
            .ok_or_else(|| Error::msg("the CPU's random number generator kept failing"))?;
        chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
    }
    Ok(())
}
