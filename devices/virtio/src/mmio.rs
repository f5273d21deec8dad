//! virtio-mmio devices of QEMU's `microvm` machine (and Firecracker's
//! layout): eight 512-byte slots from 0xfeb0_0000, slot `i` interrupting on
//! GSI 16 + i of the first I/O APIC. That is the machine with `ioapic2=off`,
//! which the runner passes; with a second I/O APIC QEMU moves the slots'
//! interrupts there, which this target does not drive.

use crate::{Interrupt, Transport};
use core::ptr::NonNull;
use virtio_drivers::transport::SomeTransport;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};

const BASE: usize = 0xfeb0_0000;
const SLOT_SIZE: usize = 0x200;
const SLOTS: usize = 8;
const FIRST_GSI: u8 = 16;
/// "virt", little-endian, at offset 0 of every virtio-mmio slot.
const MAGIC: u32 = 0x7472_6976;

/// The populated slots, with their interrupt lines.
pub fn devices() -> impl Iterator<Item = (Transport, Interrupt)> {
    (0..SLOTS).filter_map(|slot| {
        let header = BASE + slot * SLOT_SIZE;
        // SAFETY: the slot lies in the uncached device window that paging.rs
        // identity-maps; reading the magic and device ID has no side
        // effects, and an absent slot reads as 0.
        let (magic, device_id) =
            unsafe { ((header as *const u32).read_volatile(), ((header + 8) as *const u32).read_volatile()) };
        if magic != MAGIC || device_id == 0 {
            return None; // no transport, or a transport with no device behind it
        }
        let header = NonNull::new(header as *mut VirtIOHeader).expect("not null");
        // SAFETY: a virtio-mmio register block of SLOT_SIZE bytes, owned by
        // this transport alone (each slot is probed once).
        match unsafe { MmioTransport::new(header, SLOT_SIZE) } {
            Ok(t) => Some((Transport::new(SomeTransport::Mmio(t)), Interrupt::Line(FIRST_GSI + slot as u8))),
            Err(e) => {
                log::warn!("virtio-mmio slot {slot}: {e}");
                None
            }
        }
    })
}
