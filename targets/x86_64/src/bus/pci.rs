//! PCI configuration mechanism #1 (ports 0xcf8/0xcfc) and the INTx routing
//! of QEMU's two PC chipsets.
//!
//! In APIC mode q35 wires PIRQ A-H to GSI 16-23, and slot `s` pin `p`
//! (INTA = 0) raises PIRQ E-H, `4 + (s + p) % 4`, for slots below 25
//! (QEMU's ICH9 default routing, which its ACPI tables describe). On `pc`
//! (i440FX) slot `s` pin `p` raises PIIX3's PIRQ `(s - 1 + p) % 4`, which
//! the PIIX3 routes to the ISA IRQ in its register 0x60 + n; a PIRQ that
//! firmware left disabled is routed to IRQ 11 here.

use spin::Once;
use unikernel_core::bus::Function;
use x86_64::instructions::port::Port;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;
const INTEL: u16 = 0x8086;
/// The host bridges (MCH) of q35 and of pc (i440FX).
const Q35_HOST_BRIDGE: u16 = 0x29c0;
const I440FX_HOST_BRIDGE: u16 = 0x1237;
const HOST_BRIDGE: Function = Function { bus: 0, device: 0, function: 0 };
/// PIIX3's ISA bridge (function 0 of slot 1 on pc) and its PIRQ A-D routing.
const PIIX3: Function = Function { bus: 0, device: 1, function: 0 };
const PIRQ_ROUTE: u16 = 0x60;
const PIRQ_DISABLED: u8 = 0x80;
/// Where disabled PIRQs are routed: free on QEMU's pc without legacy devices.
const PIRQ_IRQ: u8 = 11;
/// PIRQ E's GSI on q35.
const PIRQ_E_GSI: u8 = 20;

fn select(function: Function, offset: u16) {
    let Function { bus, device, function } = function;
    let address =
        1 << 31 | u32::from(bus) << 16 | u32::from(device) << 11 | u32::from(function) << 8 | u32::from(offset & 0xfc);
    // SAFETY: CONFIG_ADDRESS; this target runs on one CPU, so the
    // address/data pair is not raced.
    unsafe { Port::<u32>::new(CONFIG_ADDRESS).write(address) };
}

/// Mechanism #1 reaches the first 256 bytes only; beyond reads as absent.
pub fn read32(function: Function, offset: u16) -> u32 {
    if offset > 0xff {
        return u32::MAX;
    }
    select(function, offset);
    // SAFETY: CONFIG_DATA for the register just selected.
    unsafe { Port::<u32>::new(CONFIG_DATA).read() }
}

/// Writes beyond the first 256 bytes are dropped, as `read32` explains.
pub fn write32(function: Function, offset: u16, value: u32) {
    if offset > 0xff {
        return;
    }
    select(function, offset);
    // SAFETY: as in read32.
    unsafe { Port::<u32>::new(CONFIG_DATA).write(value) }
}

#[derive(Clone, Copy, Debug)]
pub enum Chipset {
    Q35,
    I440fx,
}

/// The chipset, from its host bridge; `None` without PCI (microvm) or on a
/// host bridge whose routing this target does not know.
pub fn chipset() -> Option<Chipset> {
    static CHIPSET: Once<Option<Chipset>> = Once::new();
    *CHIPSET.call_once(|| {
        let id = read32(HOST_BRIDGE, 0);
        match (id as u16, (id >> 16) as u16) {
            _ if id == u32::MAX => None, // no PCI
            (INTEL, Q35_HOST_BRIDGE) => Some(Chipset::Q35),
            (INTEL, I440FX_HOST_BRIDGE) => Some(Chipset::I440fx),
            _ => {
                log::warn!("pci: host bridge {id:#010x} is neither q35's nor i440FX's; its devices are not driven");
                None
            }
        }
    })
}

impl Chipset {
    /// The interrupt line of `pin` (1 = INTA) of the device in `slot`.
    pub fn intx(self, slot: u8, pin: u8) -> Option<u8> {
        if pin == 0 || pin > 4 {
            return None;
        }
        match self {
            Self::Q35 if slot < 25 => Some(PIRQ_E_GSI + (slot + pin - 1) % 4),
            Self::Q35 => None,
            Self::I440fx => {
                let pirq = (slot + pin + 2) % 4; // (slot - 1 + pin - 1) mod 4
                let routes = read32(PIIX3, PIRQ_ROUTE);
                let irq = (routes >> (8 * pirq)) as u8;
                if irq & PIRQ_DISABLED == 0 && irq < 16 {
                    return Some(irq);
                }
                let routes = routes & !(0xff << (8 * pirq)) | u32::from(PIRQ_IRQ) << (8 * pirq);
                write32(PIIX3, PIRQ_ROUTE, routes);
                Some(PIRQ_IRQ)
            }
        }
    }
}
