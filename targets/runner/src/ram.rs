//! Refuses a `--memory` too small to hold the image. QEMU's loader would
//! then write the image into nothing and the guest would hang or reset
//! without a word; the ELF's segments say what must fit. With the image in
//! RAM, the guest itself checks room for its stack and heap and says what is
//! missing.

use crate::image::{Arch, Image};
use crate::{options::Options, qemu};

const KIB: u64 = 1024;
/// SeaBIOS keeps the top 128 KiB of RAM for itself, and its scratch
/// allocations while booting land just below, over the image if it ends
/// there. Measured under QEMU 7.2: hello needs more than 32 KiB between its
/// end and the end of the RAM SeaBIOS reports, http with virtio-net-pci's
/// option ROM more than 148 KiB (196 KiB was enough).
const SEABIOS_RESERVE: u64 = 384 * KIB;

/// Where RAM starts: at 0 on x86 (PVH images load at 1 MiB), at 1 GiB on
/// QEMU's aarch64 `virt`.
fn ram_base(arch: Arch) -> u64 {
    match arch {
        Arch::X86_64 => 0,
        Arch::Aarch64 => 1 << 30,
    }
}

/// RAM runs from its base to the end of `--memory` less what the firmware
/// keeps.
pub fn check(opts: &Options, image: &Image) -> Result<(), String> {
    let firmware = if image.arch == Arch::X86_64 && qemu::seabios(opts.machine) { SEABIOS_RESERVE } else { 0 };
    let base = ram_base(image.arch);
    let (extent, memory) =
        (image.extent.start.saturating_sub(base)..image.extent.end.saturating_sub(base), opts.memory_bytes());
    if extent.end <= memory.saturating_sub(firmware) {
        return Ok(());
    }
    let name = opts.image.file_name().map_or_else(|| opts.image.display().to_string(), |n| n.to_string_lossy().into());
    let firmware_note = match firmware {
        0 => String::new(),
        kept => format!(", SeaBIOS needs the top {} KiB while booting", kept / KIB),
    };
    Err(format!(
        "{name} needs at least {} KiB of RAM: its image loads at {}–{} KiB{firmware_note}, but --memory {} gives {} KiB; \
         give it more with --memory (its stack and heap need room too)",
        (extent.end + firmware).div_ceil(KIB),
        extent.start / KIB,
        extent.end.div_ceil(KIB),
        opts.memory,
        memory / KIB,
    ))
}
