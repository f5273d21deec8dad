//! virtio-mmio devices in the fixed slots the platform announces.

use crate::{Interrupt, Transport};
use alloc::vec::Vec;
use core::ptr::NonNull;
use unikernel_core::bus::{self, FixedDevice};
use virtio_drivers::transport::SomeTransport;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};

/// "virt", little-endian, at offset 0 of every virtio-mmio slot.
const MAGIC: u32 = 0x7472_6976;
/// The header fields read to tell an empty slot: magic and device ID.
const PROBED: u64 = 12;

/// The populated slots, with their interrupt lines.
pub fn devices() -> Vec<(Transport, Interrupt)> {
    let mut found = Vec::new();
    bus::fixed_devices(&mut |slot| found.extend(device(slot)));
    found
}

fn device(FixedDevice { base, size, line }: FixedDevice) -> Option<(Transport, Interrupt)> {
    if size < PROBED {
        return None;
    }
    // SAFETY: the target maps its fixed device slots uncached; reading the
    // magic and device ID has no side effects, and an absent slot reads as 0.
    let (magic, device_id) =
        unsafe { ((base as *const u32).read_volatile(), ((base + 8) as *const u32).read_volatile()) };
    if magic != MAGIC || device_id == 0 {
        return None; // no transport, or a transport with no device behind it
    }
    let header = NonNull::new(base as *mut VirtIOHeader)?;
    // SAFETY: a virtio-mmio register block of `size` bytes, owned by this
    // transport alone (each slot is probed once).
    match unsafe { MmioTransport::new(header, size as usize) } {
        Ok(t) => Some((Transport::new(SomeTransport::Mmio(t)), Interrupt::Line(line))),
        Err(e) => {
            log::warn!("virtio-mmio at {base:#x}: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::string::String;
    use unikernel_core::Error;
    use unikernel_core::bus::{Bus, Line};
    use virtio_drivers::transport::{DeviceType, Transport as _};

    /// A platform whose fixed slots are memory the test fills in.
    struct FakeBus;
    static SLOTS: spin::Mutex<Vec<FixedDevice>> = spin::Mutex::new(Vec::new());

    unikernel_core::bus::implement!(Bus for FakeBus);

    impl Bus for FakeBus {
        fn fixed_devices(visit: &mut dyn FnMut(FixedDevice)) {
            SLOTS.lock().iter().copied().for_each(visit)
        }
        fn enable_line(_: Line) -> Result<(), Error> {
            Err(Error::msg("not in this test"))
        }
    }

    /// One 512-byte virtio-mmio register block: magic, version, device ID.
    #[repr(C, align(8))]
    struct Registers([u32; 128]);

    fn slot(magic: u32, device_id: u32, size: u64, line: u8) -> FixedDevice {
        let mut registers = Box::new(Registers([0; 128]));
        registers.0[..3].copy_from_slice(&[magic, 2, device_id]);
        let base = Box::leak(registers) as *mut Registers as u64;
        FixedDevice { base, size, line: Line(line) }
    }

    #[test]
    fn only_populated_slots_become_devices_with_the_platforms_lines() {
        *SLOTS.lock() = alloc::vec![
            slot(MAGIC, 1, 0x200, 16), // a network device
            slot(0, 0, 0x200, 17),     // nothing answers
            slot(MAGIC, 0, 0x200, 18), // a transport with no device behind it
            slot(MAGIC, 2, 8, 19),     // too small to hold a header
            slot(MAGIC, 2, 0x200, 20), // a block device
        ];
        let found: Vec<(DeviceType, String)> =
            devices().iter().map(|(t, i)| (t.device_type(), alloc::format!("{i}"))).collect();
        assert_eq!(found, [(DeviceType::Network, "line 16".into()), (DeviceType::Block, "line 20".into())]);
    }
}
