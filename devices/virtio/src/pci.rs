//! virtio-pci devices on bus 0, through the platform's configuration
//! access ([`unikernel_core::bus`]).
//!
//! qboot leaves BARs unassigned, so memory BARs are placed here, in the
//! platform's BAR window. Devices interrupt through MSI-X when they have
//! it: every queue and configuration change on vector 0 (virtio-drivers
//! leaves vectors alone, so they are programmed here once the driver set
//! its queues up). Otherwise, or if the device refuses the vector, they use
//! the INTx line the platform routes their pin to.

use crate::pci_layout as layout;
use crate::{Interrupt, Transport};
use core::ops::Range;
use unikernel_core::Error;
use unikernel_core::bus::{self, Function, Line};
use virtio_drivers::transport::SomeTransport;
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{
    BarInfo, Command, ConfigurationAccess, DeviceFunction, MemoryBarType, PciRoot,
};

const VIRTIO_VENDOR: u16 = 0x1af4;
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

/// virtio-drivers' configuration access, over the platform's.
struct Config;

fn function(DeviceFunction { bus, device, function }: DeviceFunction) -> Function {
    Function { bus, device, function }
}

impl ConfigurationAccess for Config {
    fn read_word(&self, device_function: DeviceFunction, offset: u8) -> u32 {
        bus::pci_read32(function(device_function), offset.into())
    }

    fn write_word(&mut self, device_function: DeviceFunction, offset: u8, data: u32) {
        bus::pci_write32(function(device_function), offset.into(), data)
    }

    unsafe fn unsafe_clone(&self) -> Self {
        Self
    }
}

/// The virtio devices on bus 0, with how they interrupt.
pub fn devices() -> alloc::vec::Vec<(Transport, Interrupt)> {
    let mut found = alloc::vec::Vec::new();
    if !bus::pci_present() {
        return found;
    }
    let window = bus::pci_bar_window();
    let mut root = PciRoot::new(Config);
    let mut next_bar = window.start;
    let virtio: alloc::vec::Vec<DeviceFunction> =
        root.enumerate_bus(0).filter(|(_, info)| info.vendor_id == VIRTIO_VENDOR).map(|(df, _)| df).collect();
    for df in virtio {
        if let Err(e) = assign_bars(&mut root, df, &mut next_bar, &window) {
            log::warn!("pci: {df}: {e}");
            continue;
        }
        root.set_command(df, Command::MEMORY_SPACE | Command::BUS_MASTER);
        let pin = (Config.read_word(df, INTERRUPT_PIN) >> 8) as u8; // 1 = INTA
        let Some(intx) = bus::pci_intx(function(df), pin) else {
            log::warn!("pci: {df}: no INTx routing known for pin {pin}");
            continue;
        };
        let interrupt = match msix(&mut root, df) {
            Ok(Some(msix)) => Interrupt::MsiX(MsiX { intx, ..msix }),
            Ok(None) => Interrupt::Line(intx),
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

/// Places the device's memory BARs at naturally aligned addresses from
/// `next` in `window`; I/O BARs are left alone (virtio 1.x uses memory BARs).
fn assign_bars(
    root: &mut PciRoot<Config>,
    df: DeviceFunction,
    next: &mut u64,
    window: &Range<u64>,
) -> Result<(), &'static str> {
    let bars = root.bars(df).map_err(|_| "unreadable BARs")?;
    for (index, bar) in bars.iter().enumerate() {
        let Some(BarInfo::Memory { address_type, size, .. }) = bar else { continue };
        let address = layout::place(*next, *size, window.end).ok_or("the BAR window is full")?;
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
fn msix(root: &mut PciRoot<Config>, df: DeviceFunction) -> Result<Option<MsiX>, &'static str> {
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
            .map(|offset| Config.read_word(df, offset))
            .ok_or("a capability past the configuration space")
    };
    let table = read(capability.offset, 4)?;
    let table =
        layout::locate(&bars, table & 0b111, table & !0b111, MSIX_ENTRY).ok_or("the MSI-X table is outside its BAR")?;
    let (bar, offset) = (read(common.offset, 4)? & 0xff, read(common.offset, 8)?);
    let common =
        layout::locate(&bars, bar, offset, COMMON_CFG_LEN).ok_or("the common configuration is outside its BAR")?;
    Ok(Some(MsiX { df, capability: capability.offset, table, common, intx: Line(0) }))
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
    intx: Line,
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
            entry.write_volatile(msi.message.address as u32);
            entry.add(1).write_volatile((msi.message.address >> 32) as u32);
            entry.add(2).write_volatile(msi.message.data);
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
            log::warn!("pci: {}: MSI-X vector refused; using INTx {}", self.df, self.intx);
            return unikernel_core::interrupt::register(self.intx.0, handler);
        }
        let control = Config.read_word(self.df, self.capability);
        Config.write_word(self.df, self.capability, (control | MSIX_ENABLE) & !MSIX_MASK_ALL);
        log::debug!("pci: {}: MSI-X on {}", self.df, msi.line);
        Ok(())
    }
}
