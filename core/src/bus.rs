//! The platform line: what portable drivers ask of the machine they run on.
//!
//! Drivers (`devices/`) find devices and route their interrupts through the
//! free functions here; the boot target implements [`Bus`] (and, where the
//! CPU has a generator, [`CpuRandom`]) once and binds it with
//! [`implement!`](crate::bus_implement). The binding is by symbol at link
//! time, as `critical-section` and getrandom's custom backend do, rather
//! than a `&dyn` installed at boot: a vtable would keep every method, and so
//! PCI probing and interrupt routing, in images that never touch a device.
//! Only the functions an image calls are linked.
//!
//! Both sides of every signature are in this file: the `extern` block
//! below and the functions [`implement!`](crate::bus_implement) defines.

use crate::Error;
use core::ops::Range;

/// A PCI function (segment 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    /// Bus number: the `bus` of `bus:device.function`.
    pub bus: u8,
    /// Device number on the bus, 0 to 31.
    pub device: u8,
    /// Function number within the device, 0 to 7.
    pub function: u8,
}

/// An interrupt line as the target numbers it: an index into the runtime's
/// handler table ([`crate::interrupt::LINES`]), which the target maps to an
/// input of its interrupt controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line(pub u8);

impl core::fmt::Display for Line {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "line {}", self.0)
    }
}

/// What a device writes, and where, to raise a message-signalled interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiMessage {
    /// Physical address the device writes `data` to.
    pub address: u64,
    /// The value written; it tells the interrupt controller which line fired.
    pub data: u32,
}

/// A device at a fixed place the machine announces (a virtio-mmio slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedDevice {
    /// Physical address of its registers, mapped uncached by the target.
    pub base: u64,
    /// Length of the register window in bytes.
    pub size: u64,
    /// The interrupt line the device raises.
    pub line: Line,
}

/// Buses and interrupt routing, implemented once per target. Functions, not
/// methods: they are bound by [`implement!`](crate::bus_implement).
///
/// The defaults describe a machine without PCI and without message-signalled
/// interrupts (the hosted target, test fakes): a target overrides what it has.
pub trait Bus {
    /// Calls `visit` with each fixed device slot (populated or not).
    fn fixed_devices(visit: &mut dyn FnMut(FixedDevice));
    /// Routes a wired `line` to [`crate::interrupt::dispatch`].
    fn enable_line(line: Line) -> Result<(), Error>;
    /// Whether there is a PCI bus this target can drive.
    fn pci_present() -> bool {
        false
    }
    /// Reads the aligned 32-bit configuration register at `offset`.
    fn pci_read32(_function: Function, _offset: u16) -> u32 {
        u32::MAX // what an absent function reads as
    }
    /// Writes the aligned 32-bit configuration register at `offset`.
    fn pci_write32(_function: Function, _offset: u16, _value: u32) {}
    /// Where memory BARs may be placed; the target maps it uncached.
    fn pci_bar_window() -> Range<u64> {
        0..0
    }
    /// The line `pin` (1 = INTA) of `function` raises, programming the
    /// chipset's routing if it needs it; `None` when it is not known.
    fn pci_intx(_function: Function, _pin: u8) -> Option<Line> {
        None
    }
    /// The lines that arrive by message rather than by wire.
    fn msi_lines() -> Range<u8> {
        0..0
    }
    /// The message that raises `line`, when the target has messages.
    fn msi_message(_line: Line) -> Option<MsiMessage> {
        None
    }
}

/// Which kind of CPU generator to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomKind {
    /// A DRBG the hardware reseeds: fast, the usual choice.
    Drbg,
    /// The hardware entropy source itself: slower, for seeding.
    Seed,
}

/// The CPU's random-number instructions, where the target has them.
pub trait CpuRandom {
    /// Whether this CPU has the instruction for `kind`.
    fn available(kind: RandomKind) -> bool;
    /// One value, after the retries the vendor recommends; `None` when the
    /// generator kept failing (never unrandom bytes).
    fn next(kind: RandomKind) -> Option<u64>;
}

unsafe extern "Rust" {
    safe fn __unikernel_bus_fixed_devices(visit: &mut dyn FnMut(FixedDevice));
    safe fn __unikernel_bus_pci_present() -> bool;
    safe fn __unikernel_bus_pci_read32(function: Function, offset: u16) -> u32;
    safe fn __unikernel_bus_pci_write32(function: Function, offset: u16, value: u32);
    safe fn __unikernel_bus_pci_bar_window() -> Range<u64>;
    safe fn __unikernel_bus_pci_intx(function: Function, pin: u8) -> Option<Line>;
    safe fn __unikernel_bus_enable_line(line: Line) -> Result<(), Error>;
    safe fn __unikernel_bus_msi_lines() -> Range<u8>;
    safe fn __unikernel_bus_msi_message(line: Line) -> Option<MsiMessage>;
    safe fn __unikernel_cpu_random_available(kind: RandomKind) -> bool;
    safe fn __unikernel_cpu_random_next(kind: RandomKind) -> Option<u64>;
}

/// Binds a target's [`Bus`] or [`CpuRandom`] implementation:
/// `unikernel_core::bus::implement!(Bus for X86Bus);`. Once per image.
#[macro_export]
macro_rules! bus_implement {
    (Bus for $t:ty) => {
        const _: () = {
            use $crate::bus::{Bus, FixedDevice, Function, Line, MsiMessage};
            #[unsafe(no_mangle)]
            fn __unikernel_bus_fixed_devices(visit: &mut dyn FnMut(FixedDevice)) {
                <$t as Bus>::fixed_devices(visit)
            }
            #[unsafe(no_mangle)]
            fn __unikernel_bus_pci_present() -> bool {
                <$t as Bus>::pci_present()
            }
            #[unsafe(no_mangle)]
            fn __unikernel_bus_pci_read32(function: Function, offset: u16) -> u32 {
                <$t as Bus>::pci_read32(function, offset)
            }
            #[unsafe(no_mangle)]
            fn __unikernel_bus_pci_write32(function: Function, offset: u16, value: u32) {
                <$t as Bus>::pci_write32(function, offset, value)
            }
            #[unsafe(no_mangle)]
            fn __unikernel_bus_pci_bar_window() -> ::core::ops::Range<u64> {
                <$t as Bus>::pci_bar_window()
            }
            #[unsafe(no_mangle)]
            fn __unikernel_bus_pci_intx(function: Function, pin: u8) -> Option<Line> {
                <$t as Bus>::pci_intx(function, pin)
            }
            #[unsafe(no_mangle)]
            fn __unikernel_bus_enable_line(line: Line) -> Result<(), $crate::Error> {
                <$t as Bus>::enable_line(line)
            }
            #[unsafe(no_mangle)]
            fn __unikernel_bus_msi_lines() -> ::core::ops::Range<u8> {
                <$t as Bus>::msi_lines()
            }
            #[unsafe(no_mangle)]
            fn __unikernel_bus_msi_message(line: Line) -> Option<MsiMessage> {
                <$t as Bus>::msi_message(line)
            }
        };
    };
    (CpuRandom for $t:ty) => {
        const _: () = {
            use $crate::bus::{CpuRandom, RandomKind};
            #[unsafe(no_mangle)]
            fn __unikernel_cpu_random_available(kind: RandomKind) -> bool {
                <$t as CpuRandom>::available(kind)
            }
            #[unsafe(no_mangle)]
            fn __unikernel_cpu_random_next(kind: RandomKind) -> Option<u64> {
                <$t as CpuRandom>::next(kind)
            }
        };
    };
}
pub use bus_implement as implement;

/// See [`Bus::fixed_devices`].
pub fn fixed_devices(visit: &mut dyn FnMut(FixedDevice)) {
    __unikernel_bus_fixed_devices(visit)
}

/// See [`Bus::pci_present`].
pub fn pci_present() -> bool {
    __unikernel_bus_pci_present()
}

/// See [`Bus::pci_read32`].
pub fn pci_read32(function: Function, offset: u16) -> u32 {
    __unikernel_bus_pci_read32(function, offset)
}

/// See [`Bus::pci_write32`].
pub fn pci_write32(function: Function, offset: u16, value: u32) {
    __unikernel_bus_pci_write32(function, offset, value)
}

/// See [`Bus::pci_bar_window`].
pub fn pci_bar_window() -> Range<u64> {
    __unikernel_bus_pci_bar_window()
}

/// See [`Bus::pci_intx`].
pub fn pci_intx(function: Function, pin: u8) -> Option<Line> {
    __unikernel_bus_pci_intx(function, pin)
}

/// See [`Bus::enable_line`]; drivers call [`crate::interrupt::register`].
pub(crate) fn enable_line(line: Line) -> Result<(), Error> {
    __unikernel_bus_enable_line(line)
}

/// See [`Bus::msi_lines`].
pub(crate) fn msi_lines() -> Range<u8> {
    __unikernel_bus_msi_lines()
}

/// See [`Bus::msi_message`]; drivers call [`crate::interrupt::register_msi`].
pub(crate) fn msi_message(line: Line) -> Option<MsiMessage> {
    __unikernel_bus_msi_message(line)
}

/// See [`CpuRandom::available`].
pub fn cpu_random_available(kind: RandomKind) -> bool {
    __unikernel_cpu_random_available(kind)
}

/// See [`CpuRandom::next`].
pub fn cpu_random_next(kind: RandomKind) -> Option<u64> {
    __unikernel_cpu_random_next(kind)
}

/// The virtio-mmio devices announced on the kernel command line, as Linux
/// reads them: `virtio_mmio.device=<size>@<base>:<irq>[:<id>]`, the size
/// with an optional `K`/`M`/`G` suffix, the base in hex with `0x`
/// (Firecracker announces its devices only this way; QEMU's microvm adds the
/// same words without ACPI). Malformed words are skipped with a warning:
/// the VMM may be wrong, the guest must not crash on it.
pub fn announced_mmio() -> impl Iterator<Item = FixedDevice> {
    crate::cmdline::args().filter_map(|word| {
        let spec = word.strip_prefix("virtio_mmio.device=")?;
        let device = parse_mmio(spec);
        if device.is_none() {
            log::warn!("virtio-mmio: ignoring the malformed announcement {word:?}");
        }
        device
    })
}

fn parse_mmio(spec: &str) -> Option<FixedDevice> {
    let (size, rest) = spec.split_once('@')?;
    let mut fields = rest.split(':');
    let (base, irq) = (fields.next()?, fields.next()?);
    if fields.nth(1).is_some() {
        return None; // only an optional platform-device id may follow
    }
    let (digits, shift) = match size.as_bytes().last()? {
        b'K' | b'k' => (&size[..size.len() - 1], 10),
        b'M' | b'm' => (&size[..size.len() - 1], 20),
        b'G' | b'g' => (&size[..size.len() - 1], 30),
        _ => (size, 0),
    };
    let size = number(digits)?.checked_mul(1 << shift)?;
    let base = u64::from_str_radix(base.strip_prefix("0x").or_else(|| base.strip_prefix("0X"))?, 16).ok()?;
    let line = Line(irq.parse().ok()?);
    (size > 0 && base.checked_add(size).is_some()).then_some(FixedDevice { base, size, line })
}

/// A decimal, or a hex number with `0x`, as Linux's `memparse` reads sizes.
fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::{FixedDevice, Line, parse_mmio};

    #[test]
    fn announcements_as_firecracker_and_qemu_write_them() {
        let fc = FixedDevice { base: 0xd000_0000, size: 4096, line: Line(5) };
        assert_eq!(parse_mmio("4K@0xd0000000:5"), Some(fc));
        assert_eq!(parse_mmio("4096@0xd0000000:5:0"), Some(fc), "with a platform-device id");
        let qemu = FixedDevice { base: 0x1000_0e00, size: 512, line: Line(12) };
        assert_eq!(parse_mmio("512@0x10000e00:12"), Some(qemu));
        assert_eq!(parse_mmio("0x200@0X10000E00:12").map(|d| d.size), Some(512));
    }

    #[test]
    fn malformed_announcements_are_refused() {
        for bad in [
            "",
            "4K",
            "4K@0xd0000000",
            "4K@d0000000:5",
            "4K@0xd0000000:256",
            "4K@0xd0000000:-1",
            "4K@0xd0000000:5:0:7",
            "0@0xd0000000:5",
            "xK@0xd0000000:5",
            "99999999999G@0x1:5",
            "4K@0xffffffffffffffff:5",
            "4K@0x:5",
        ] {
            assert_eq!(parse_mmio(bad), None, "{bad:?}");
        }
    }
}
