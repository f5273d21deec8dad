//! virtio-pci devices on bus 0 of QEMU's `q35` machine, through the legacy
//! configuration ports (0xcf8/0xcfc).
//!
//! qboot leaves BARs unassigned, so memory BARs are placed here, in the
//! 32 MiB window from 0xc000_0000 that the x86_64 target's paging maps
//! uncached. Devices interrupt through MSI-X when they have it: every queue
//! and configuration change on vector 0 (virtio-drivers leaves vectors
//! alone, so they are programmed here once the driver set its queues up).
//! Otherwise, or if the device refuses the vector, they use INTx: in APIC mode q35 wires PIRQ A-H to GSI 16-23, and slot `s` pin `p`
//! (INTA = 0) raises PIRQ E-H, `4 + (s + p) % 4`, for slots below 25 (QEMU's
//! ICH9 default routing, which its ACPI tables describe). On `pc` (i440FX)
//! slot `s` pin `p` raises PIIX3's PIRQ `(s - 1 + p) % 4`, which the PIIX3
//! routes to the ISA IRQ in its register 0x60 + n; a PIRQ that firmware
//! left disabled is routed to IRQ 11 here.

use crate::pci_layout as layout;
use crate::{Interrupt, Transport};
use unikernel_core::Error;
use virtio_drivers::transport::SomeTransport;
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{
    BarInfo, Command, ConfigurationAccess, DeviceFunction, MemoryBarType, PciRoot,
};
use x86_64::instructions::port::Port;

const VIRTIO_VENDOR: u16 = 0x1af4;
const INTEL: u16 = 0x8086;
/// The host bridges (MCH) of q35 and of pc (i440FX).
const Q35_HOST_BRIDGE: u16 = 0x29c0;
const I440FX_HOST_BRIDGE: u16 = 0x1237;
/// PIIX3's ISA bridge (function 0 of slot 1 on pc) and its PIRQ A-D routing.
const PIIX3: DeviceFunction = DeviceFunction { bus: 0, device: 1, function: 0 };
const PIRQ_ROUTE: u8 = 0x60;
const PIRQ_DISABLED: u8 = 0x80;
/// Where disabled PIRQs are routed: free on QEMU's pc without legacy devices.
const PIRQ_IRQ: u8 = 11;
/// Where memory BARs go (`PCI_WINDOW` in the x86_64 target's paging).
const BAR_WINDOW: core::ops::Range<u64> = 0xc000_0000..0xc200_0000;
const INTERRUPT_PIN: u8 = 0x3c;
const CAP_MSIX: u8 = 0x11;
const CAP_VENDOR: u8 = 0x09;
/// virtio's capability type of the common configuration structure.
const VIRTIO_COMMON_CFG: u8 = 1;
/// MSI-X message control: enable, and mask all.
const MSIX_ENABLE: u32 = 1 << 31;
const MSIX_MASK_ALL: u32 = 1 << 30;
/// Offsets in virtio's common configuration structure.
const MSIX_CONFIG: u64 = 0x10;
const NUM_QUEUES: u64 = 0x12;
const QUEUE_SELECT: u64 = 0x16;
const QUEUE_MSIX_VECTOR: u64 = 0x1a;
/// The bytes of the common configuration touched here (to the end of
/// `queue_msix_vector`), and of one MSI-X table entry.
const COMMON_CFG_LEN: u64 = QUEUE_MSIX_VECTOR + 2;
const MSIX_ENTRY: u64 = 16;
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

/// The virtio devices on bus 0, with how they interrupt.
pub fn devices() -> alloc::vec::Vec<(Transport, Interrupt)> {
    let mut found = alloc::vec::Vec::new();
    let id = host_bridge(&Ports);
    if id == u32::MAX {
        return found; // no PCI (microvm)
    }
    let chipset = match (id as u16, (id >> 16) as u16) {
        (INTEL, Q35_HOST_BRIDGE) => Chipset::Q35,
        (INTEL, I440FX_HOST_BRIDGE) => Chipset::I440fx,
        _ => {
            log::warn!("pci: host bridge {id:#010x} is neither q35's nor i440FX's; its devices are not driven");
            return found;
        }
    };
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
        let Some(gsi) = chipset.gsi(df.device, pin) else {
            log::warn!("pci: {df}: no INTx routing known for pin {pin}");
            continue;
        };
        let interrupt = match msix(&mut root, df) {
            Ok(Some(msix)) => Interrupt::MsiX(MsiX { gsi, ..msix }),
            Ok(None) => Interrupt::Line(gsi),
            Err(e) => {
                log::warn!("pci: {df}: {e}; the device is not driven");
                continue;
            }
        };
        match PciTransport::new::<crate::Hal, _>(&mut root, df) {
            Ok(t) => found.push((Transport::new(SomeTransport::Pci(t)), interrupt)),
            Err(e) => log::warn!("pci: {df}: {e}"),
        }
    }
    found
}

#[derive(Clone, Copy)]
enum Chipset {
    Q35,
    I440fx,
}

impl Chipset {
    /// The interrupt line of `pin` (1 = INTA) of the device in `slot`.
    fn gsi(self, slot: u8, pin: u8) -> Option<u8> {
        if pin == 0 || pin > 4 {
            return None;
        }
        match self {
            Self::Q35 if slot < 25 => Some(PIRQ_E_GSI + (slot + pin - 1) % 4),
            Self::Q35 => None,
            Self::I440fx => {
                let pirq = (slot + pin + 2) % 4; // (slot - 1 + pin - 1) mod 4
                let routes = Ports.read_word(PIIX3, PIRQ_ROUTE);
                let irq = (routes >> (8 * pirq)) as u8;
                if irq & PIRQ_DISABLED == 0 && irq < 16 {
                    return Some(irq);
                }
                let routes = routes & !(0xff << (8 * pirq)) | u32::from(PIRQ_IRQ) << (8 * pirq);
                Ports.write_word(PIIX3, PIRQ_ROUTE, routes);
                Some(PIRQ_IRQ)
            }
        }
    }
}

/// Places the device's memory BARs at naturally aligned addresses from
/// `next`; I/O BARs are left alone (virtio 1.x uses memory BARs).
fn assign_bars(root: &mut PciRoot<Ports>, df: DeviceFunction, next: &mut u64) -> Result<(), &'static str> {
    let bars = root.bars(df).map_err(|_| "unreadable BARs")?;
    for (index, bar) in bars.iter().enumerate() {
        let Some(BarInfo::Memory { address_type, size, .. }) = bar else { continue };
        let address = layout::place(*next, *size, BAR_WINDOW.end).ok_or("the BAR window is full")?;
        match address_type {
            MemoryBarType::Width32 => root.set_bar_32(df, index as u8, address as u32),
            MemoryBarType::Width64 => root.set_bar_64(df, index as u8, address),
            MemoryBarType::Below1MiB => return Err("a BAR below 1 MiB"),
        }
        *next = address + size; // cannot overflow: `place` checked it ends in the window
    }
    Ok(())
}

/// Where the device's MSI-X table and virtio common configuration are
/// (`None` without MSI-X); an error when either lies outside its BAR.
fn msix(root: &mut PciRoot<Ports>, df: DeviceFunction) -> Result<Option<MsiX>, &'static str> {
    let bars = root.bars(df).map_err(|_| "unreadable BARs")?.map(|bar| match bar {
        Some(BarInfo::Memory { address, size, .. }) => Some(layout::Bar { address, size }),
        _ => None,
    });
    let Some(capability) = root.capabilities(df).find(|c| c.id == CAP_MSIX) else { return Ok(None) };
    let Some(common) =
        root.capabilities(df).find(|c| c.id == CAP_VENDOR && (c.private_header >> 8) as u8 == VIRTIO_COMMON_CFG)
    else {
        return Ok(None);
    };
    let read = |capability: u8, field: u8| {
        layout::capability_field(capability, field)
            .map(|offset| Ports.read_word(df, offset))
            .ok_or("a capability past the configuration space")
    };
    let table = read(capability.offset, 4)?;
    let table =
        layout::locate(&bars, table & 0b111, table & !0b111, MSIX_ENTRY).ok_or("the MSI-X table is outside its BAR")?;
    let (bar, offset) = (read(common.offset, 4)? & 0xff, read(common.offset, 8)?);
    let common =
        layout::locate(&bars, bar, offset, COMMON_CFG_LEN).ok_or("the common configuration is outside its BAR")?;
    Ok(Some(MsiX { df, capability: capability.offset, table, common, gsi: 0 }))
}

/// A virtio-pci device's MSI-X, with its INTx line to fall back to.
#[derive(Debug)]
pub struct MsiX {
    df: DeviceFunction,
    capability: u8,
    /// Entry 0 of the MSI-X table.
    table: u64,
    /// virtio's common configuration structure.
    common: u64,
    gsi: u8,
}

impl MsiX {
    fn common<T>(&self, offset: u64) -> *mut T {
        (self.common + offset) as *mut T
    }

    /// Sends every interrupt of the device to `handler` through MSI-X
    /// vector 0; uses the INTx line if the device refuses the vector.
    pub fn register(self, handler: fn()) -> Result<(), Error> {
        let msi = unikernel_core::interrupt::register_msi(handler)?;
        let entry = self.table as *mut u32;
        // SAFETY: entry 0 of the device's MSI-X table and its common
        // configuration, in BARs assigned above, mapped uncached, with
        // memory decoding on; nothing else touches them during probe.
        let refused = unsafe {
            entry.write_volatile(msi.address as u32);
            entry.add(1).write_volatile((msi.address >> 32) as u32);
            entry.add(2).write_volatile(msi.data);
            entry.add(3).write_volatile(0); // unmasked
            self.common::<u16>(MSIX_CONFIG).write_volatile(0);
            let queues = self.common::<u16>(NUM_QUEUES).read_volatile();
            (0..queues).any(|queue| {
                self.common::<u16>(QUEUE_SELECT).write_volatile(queue);
                self.common::<u16>(QUEUE_MSIX_VECTOR).write_volatile(0);
                self.common::<u16>(QUEUE_MSIX_VECTOR).read_volatile() != 0
            })
        };
        if refused {
            log::warn!("pci: {}: MSI-X vector refused; using INTx line {}", self.df, self.gsi);
            return unikernel_core::interrupt::register(self.gsi, handler);
        }
        let control = Ports.read_word(self.df, self.capability);
        Ports.write_word(self.df, self.capability, (control | MSIX_ENABLE) & !MSIX_MASK_ALL);
        log::debug!("pci: {}: MSI-X on line {}", self.df, msi.line);
        Ok(())
    }
}
