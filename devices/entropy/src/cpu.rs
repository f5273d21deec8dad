//! The CPU's generator, through the target ([`unikernel_core::bus::CpuRandom`]).

use unikernel_core::Error;
use unikernel_core::bus::{self, RandomKind};

/// Why the instruction (x86_64's, aarch64's) is missing and what to do instead.
macro_rules! missing {
    ($x86:literal, $arm:literal) => {
        concat!(
            "this CPU has no ",
            $x86,
            " (x86_64) or ",
            $arm,
            " (aarch64): run QEMU with `-cpu max` (TCG) or `-cpu host` (KVM), or read a device: ",
            "`entropy(source = \"device\")` with a driver component such as `unikernel_virtio_rng::virtio_rng`"
        )
    };
}

pub fn check(kind: RandomKind) -> Result<(), Error> {
    match kind {
        _ if bus::cpu_random_available(kind) => Ok(()),
        RandomKind::Drbg => Err(Error::msg(missing!("RDRAND", "RNDR"))),
        RandomKind::Seed => Err(Error::msg(missing!("RDSEED", "RNDRRS"))),
    }
}

pub fn fill(kind: RandomKind, buf: &mut [u8]) -> Result<(), Error> {
    for chunk in buf.chunks_mut(8) {
        let value =
            bus::cpu_random_next(kind).ok_or_else(|| Error::msg("the CPU's random number generator kept failing"))?;
        chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
    }
    Ok(())
}
