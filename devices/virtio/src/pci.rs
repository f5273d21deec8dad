//! virtio-pci devices on bus 0 of QEMU's `q35` machine, through the legacy
//! configuration ports (0xcf8/0xcfc).
//!
//! qboot leaves BARs unassigned, so memory BARs are placed here, in the
//! 32 MiB window from 0xc000_0000 that the x86_64 target's paging maps
//! uncached. MSI-X stays
//! off (virtio-drivers does not program vectors), so devices interrupt on
//! INTx: in APIC mode q35 wires PIRQ A-H to GSI 16-23, and slot `s` pin `p`
//! (INTA = 0) raises PIRQ E-H, `4 + (s + p) % 4`, for slots below 25 (QEMU's
//! ICH9 default routing, which its ACPI tables describe). Other chipsets
//! are not driven.

use crate::Transport;
use virtio_drivers::transport::SomeTransport;
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{
    BarInfo, Command, ConfigurationAccess, DeviceFunction, MemoryBarType, PciRoot,
};
use x86_64::instructions::port::Port;

const VIRTIO_VENDOR: u16 = 0x1af4;
const INTEL: u16 = 0x8086;
/// The host bridge (MCH) of q35.
const Q35_HOST_BRIDGE: u16 = 0x29c0;
/// Where memory BARs go (`PCI_WINDOW` in the x86_64 target's paging).
const BAR_WINDOW: core::ops::Range<u64> = 0xc000_0000..0xc200_0000;
const INTERRUPT_PIN: u8 = 0x3c;
/// PIRQ E's GSI.
const PIRQ_E_GSI: u8 = 20;

/// Configuration space through the 0xcf8/0xcfc port pair.
struct Ports;

impl Ports {
    fn select(device_function: DeviceFunction, offset: u8) {
        let DeviceFunction { bus, device, function } = device_function;
        let address = 1 << 31
            | u32::from(bus) << 16
            | u32::from(device) << 11
            | u32::from(function) << 8
            | u32::from(offset & 0xfc);
        // SAFETY: CONFIG_ADDRESS; this target runs on one CPU, so the
        // address/data pair is not raced.
        unsafe { Port::<u32>::new(0xcf8).write(address) };
    }
}

impl ConfigurationAccess for Ports {
    fn read_word(&self, device_function: DeviceFunction, offset: u8) -> u32 {
        Self::select(device_function, offset);
        // SAFETY: CONFIG_DATA for the register just selected.
        unsafe { Port::<u32>::new(0xcfc).read() }
    }

    fn write_word(&mut self, device_function: DeviceFunction, offset: u8, data: u32) {
        Self::select(device_function, offset);
        // SAFETY: as in read_word.
        unsafe { Port::<u32>::new(0xcfc).write(data) }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        Self
    }
}

fn host_bridge(ports: &Ports) -> u32 {
    ports.read_word(DeviceFunction { bus: 0, device: 0, function: 0 }, 0)
}

/// The virtio devices on bus 0, with their interrupt lines.
pub fn devices() -> alloc::vec::Vec<(Transport, u8)> {
    let mut found = alloc::vec::Vec::new();
    let id = host_bridge(&Ports);
    if id == u32::MAX {
        return found; // no PCI (microvm)
    }
    if id != u32::from(Q35_HOST_BRIDGE) << 16 | u32::from(INTEL) {
        log::warn!("pci: host bridge {id:#010x} is not q35's; its devices are not driven");
        return found;
    }
    let mut root = PciRoot::new(Ports);
    let mut next_bar = BAR_WINDOW.start;
    let virtio: alloc::vec::Vec<DeviceFunction> =
        root.enumerate_bus(0).filter(|(_, info)| info.vendor_id == VIRTIO_VENDOR).map(|(df, _)| df).collect();
    for df in virtio {
        if let Err(e) = assign_bars(&mut root, df, &mut next_bar) {
            log::warn!("pci: {df}: {e}");
            continue;
        }
        root.set_command(df, Command::MEMORY_SPACE | Command::BUS_MASTER);
        let pin = (Ports.read_word(df, INTERRUPT_PIN) >> 8) as u8; // 1 = INTA
        if pin == 0 || df.device >= 25 {
            log::warn!("pci: {df}: no INTx routing known for pin {pin}");
            continue;
        }
        let gsi = PIRQ_E_GSI + (df.device + pin - 1) % 4;
        match PciTransport::new::<crate::Hal, _>(&mut root, df) {
            Ok(t) => found.push((Transport(SomeTransport::Pci(t)), gsi)),
            Err(e) => log::warn!("pci: {df}: {e}"),
        }
    }
    found
}

/// Places the device's memory BARs at naturally aligned addresses from
/// `next`; I/O BARs are left alone (virtio 1.x uses memory BARs).
fn assign_bars(root: &mut PciRoot<Ports>, df: DeviceFunction, next: &mut u64) -> Result<(), &'static str> {
    let bars = root.bars(df).map_err(|_| "unreadable BARs")?;
    for (index, bar) in bars.iter().enumerate() {
        let Some(BarInfo::Memory { address_type, size, .. }) = bar else { continue };
        let address = next.next_multiple_of((*size).max(4096));
        if address + size > BAR_WINDOW.end {
            return Err("the BAR window is full");
        }
        match address_type {
            MemoryBarType::Width32 => root.set_bar_32(df, index as u8, address as u32),
            MemoryBarType::Width64 => root.set_bar_64(df, index as u8, address),
            MemoryBarType::Below1MiB => return Err("a BAR below 1 MiB"),
        }
        *next = address + size;
    }
    Ok(())
}
