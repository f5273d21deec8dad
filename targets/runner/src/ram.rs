//! Refuses a `--memory` too small to hold the image. QEMU's loader would
//! then write the image into nothing and the guest would hang or reset
//! without a word; the ELF's segments say what must fit. With the image in
//! RAM, the guest itself checks room for its stack and heap and says what is
//! missing.

use crate::{image::Image, options::Options, qemu};

const KIB: u64 = 1024;
/// SeaBIOS keeps the top 128 KiB of RAM for itself, and its scratch
/// allocations while booting land just below, over the image if it ends
/// there. Measured under QEMU 7.2: hello needs more than 32 KiB between its
/// end and the end of the RAM SeaBIOS reports, http with virtio-net-pci's
/// option ROM more than 148 KiB (196 KiB was enough).
const SEABIOS_RESERVE: u64 = 384 * KIB;

/// On every machine the runner starts, RAM runs from 1 MiB, where PVH
/// images load, to the end of `--memory` less what the firmware keeps.
pub fn check(opts: &Options, image: &Image) -> Result<(), String> {
    let firmware = if qemu::seabios(opts.machine) { SEABIOS_RESERVE } else { 0 };
    let memory = opts.memory_bytes();
    if image.extent.end <= memory.saturating_sub(firmware) {
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
        (image.extent.end + firmware).div_ceil(KIB),
        image.extent.start / KIB,
        image.extent.end.div_ceil(KIB),
        opts.memory,
        memory / KIB,
    ))
}
