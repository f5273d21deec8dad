//! virtio-mmio slots of QEMU's `microvm` machine (and Firecracker's
//! layout): eight 512-byte slots from 0xfeb0_0000, slot `i` interrupting on
//! GSI 16 + i of the first I/O APIC. That is the machine with `ioapic2=off`,
//! which the runner passes; with a second I/O APIC QEMU moves the slots'
//! interrupts there, which this target does not drive. On other machines
//! nothing answers there and the driver finds every slot empty.

use unikernel_core::bus::{FixedDevice, Line};

const BASE: u64 = 0xfeb0_0000;
const SLOT_SIZE: u64 = 0x200;
const SLOTS: u8 = 8;
const FIRST_GSI: u8 = 16;

/// Every slot, populated or not (the driver reads its magic).
pub fn slots() -> impl Iterator<Item = FixedDevice> {
    (0..SLOTS).map(|slot| FixedDevice {
        base: BASE + u64::from(slot) * SLOT_SIZE,
        size: SLOT_SIZE,
        line: Line(FIRST_GSI + slot),
    })
}
