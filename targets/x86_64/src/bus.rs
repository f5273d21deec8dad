//! This target's side of the platform line ([`unikernel_core::bus`]): PCI
//! configuration through the legacy ports, the chipsets' INTx routing,
//! microvm's virtio-mmio slots, the BAR window, and interrupt delivery
//! through the I/O APIC (wired lines) or the local APIC (MSI).

mod microvm;
mod pci;

use crate::{clock, interrupts, ioapic, layout};
use core::ops::Range;
use unikernel_core::Error;
use unikernel_core::bus::{Bus, FixedDevice, Function, Line, MsiMessage};
use unikernel_core::interrupt::LINES;

/// Base of the MSI address range (the local APIC's message window).
const MSI_ADDRESS: u64 = 0xfee0_0000;
/// Lines above the first I/O APIC's 24 pins arrive by message.
const FIRST_MSI_LINE: u8 = 24;

struct X86Bus;

unikernel_core::bus::implement!(Bus for X86Bus);

impl Bus for X86Bus {
    /// The devices the command line announces (Firecracker; microvm
    /// without ACPI), else microvm's fixed slots. An announcement outside
    /// the mapped device windows is refused: reading it would fault, or
    /// reach RAM.
    fn fixed_devices(visit: &mut dyn FnMut(FixedDevice)) {
        let mut announced = false;
        for device in unikernel_core::bus::announced_mmio() {
            announced = true;
            let mapped = device
                .base
                .checked_add(device.size)
                .is_some_and(|end| crate::paging::device_range_mapped(device.base..end));
            if mapped && device.line.0 < FIRST_MSI_LINE {
                visit(device);
            } else {
                log::warn!(
                    "virtio-mmio: ignoring a device announced at {:#x} on {}: not a device address here",
                    device.base,
                    device.line
                );
            }
        }
        if !announced {
            microvm::slots().for_each(visit);
        }
    }

    fn pci_present() -> bool {
        pci::chipset().is_some()
    }

    fn pci_read32(function: Function, offset: u16) -> u32 {
        pci::read32(function, offset)
    }

    fn pci_write32(function: Function, offset: u16, value: u32) {
        pci::write32(function, offset, value)
    }

    fn pci_bar_window() -> Range<u64> {
        layout::PCI_WINDOW
    }

    fn pci_intx(function: Function, pin: u8) -> Option<Line> {
        pci::chipset()?.intx(function.device, pin).map(Line)
    }

    fn enable_line(line: Line) -> Result<(), Error> {
        let apic = clock::get().apic;
        ioapic::route(line.0, interrupts::IRQ_BASE + line.0, apic.id());
        Ok(())
    }

    fn msi_lines() -> Range<u8> {
        FIRST_MSI_LINE..LINES as u8
    }

    fn msi_message(line: Line) -> Option<MsiMessage> {
        // Getting the clock installs the gates and brings up the local APIC.
        let apic = clock::get().apic;
        // Fixed delivery, edge, physical destination: this CPU's APIC.
        Some(MsiMessage {
            address: MSI_ADDRESS | u64::from(apic.id()) << 12,
            data: u32::from(interrupts::IRQ_BASE + line.0),
        })
    }
}
