//! The I/O APIC at its standard address: routes device interrupt lines to
//! vectors on the local APIC. ISA lines (0-15) are edge-triggered, the
//! others (PCI and virtio-mmio) level-triggered, all active-high; a line
//! stays masked until a driver registers for it.

const BASE: u64 = 0xfec0_0000;
const VERSION: u32 = 1;
const REDIRECTION: u32 = 0x10;
const MASKED: u32 = 1 << 16;
const LEVEL_TRIGGERED: u32 = 1 << 15;
/// Lines from here on are shared, level-triggered ones.
const FIRST_LEVEL_LINE: u8 = 16;

fn write(reg: u32, value: u32) {
    // SAFETY: IOREGSEL/IOWIN of the I/O APIC, identity mapped uncached by
    // paging.rs; this target uses one CPU, so the pair is not raced.
    unsafe {
        (BASE as *mut u32).write_volatile(reg);
        ((BASE + 0x10) as *mut u32).write_volatile(value);
    }
}

fn read(reg: u32) -> u32 {
    // SAFETY: as in `write`.
    unsafe {
        (BASE as *mut u32).write_volatile(reg);
        ((BASE + 0x10) as *const u32).read_volatile()
    }
}

/// Masks every line; returns how many there are.
pub fn init() -> u32 {
    let lines = ((read(VERSION) >> 16) & 0xff) + 1;
    for line in 0..lines {
        write(REDIRECTION + 2 * line, MASKED);
    }
    lines
}

/// Delivers `line` as `vector` to the local APIC `apic_id`, unmasked.
pub fn route(line: u8, vector: u8, apic_id: u8) {
    let reg = REDIRECTION + 2 * u32::from(line);
    write(reg + 1, u32::from(apic_id) << 24);
    let trigger = if line >= FIRST_LEVEL_LINE { LEVEL_TRIGGERED } else { 0 };
    write(reg, u32::from(vector) | trigger);
}
