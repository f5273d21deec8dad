//! This target's side of the platform line ([`unikernel_core::bus`]): the
//! virtio-mmio transports the device tree lists (QEMU's `virt` has 32,
//! Firecracker one per device), their interrupts through the GIC. No PCI:
//! `virt`'s PCIe host bridge is not driven (the runner attaches virtio
//! devices to the mmio transports).

use crate::{devicetree, gic, paging};
use arm_gic::{IntId, Trigger};
use unikernel_core::Error;
use unikernel_core::bus::{Bus, FixedDevice, Line};
use unikernel_core::interrupt::LINES;

/// Line `n` is shared peripheral interrupt 16 + n: `virt`'s virtio-mmio
/// transports use SPIs 16–47, and the runtime has 32 lines.
const FIRST_LINE_SPI: u32 = 16;
/// The GIC binding's first interrupt cell for an SPI.
const SPI: u32 = 0;

struct Aarch64Bus;

unikernel_core::bus::implement!(Bus for Aarch64Bus);

impl Bus for Aarch64Bus {
    /// Every `virtio,mmio` node. One whose registers are not in the device
    /// window or whose interrupt is not an SPI this target numbers is
    /// refused: reading it would fault, or reach RAM.
    fn fixed_devices(visit: &mut dyn FnMut(FixedDevice)) {
        for (window, interrupt) in devicetree::devices("virtio,mmio") {
            let line = match interrupt {
                Some((SPI, spi, _)) => spi.checked_sub(FIRST_LINE_SPI).filter(|&n| (n as usize) < LINES),
                _ => None,
            };
            match line {
                Some(n) if paging::is_device(window.clone()) => {
                    visit(FixedDevice { base: window.start, size: window.end - window.start, line: Line(n as u8) })
                }
                _ => log::warn!(
                    "virtio-mmio: ignoring the transport at {:#x} with interrupt {interrupt:?}: not a device address and shared interrupt 16-47 here",
                    window.start
                ),
            }
        }
    }

    /// Level-triggered: QEMU's and Firecracker's virtio-mmio hold the line
    /// until the driver acknowledges the interrupt status.
    fn enable_line(line: Line) -> Result<(), Error> {
        Ok(gic::enable(IntId::spi(FIRST_LINE_SPI + u32::from(line.0)), Trigger::Level)?)
    }
}

/// The runtime's line for a GIC interrupt, if it is one of them.
pub fn line_of(intid: IntId) -> Option<u8> {
    let spi = intid.raw_value().checked_sub(32 + FIRST_LINE_SPI)?;
    ((spi as usize) < LINES).then_some(spi as u8)
}
