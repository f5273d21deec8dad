//! The local APIC: x2APIC (registers are MSRs) when the CPU has it, else
//! xAPIC (registers in the MMIO page at its base address). It delivers the
//! timer interrupt and takes the end-of-interrupt for every device vector.

use core::arch::x86_64::__cpuid;
use x86_64::registers::model_specific::Msr;

const IA32_APIC_BASE: u32 = 0x1b;
const BASE_ENABLE: u64 = 1 << 11;
const BASE_X2APIC: u64 = 1 << 10;

const ID: u32 = 0x20;
const TPR: u32 = 0x80;
const EOI: u32 = 0xb0;
const SVR: u32 = 0xf0;
const LVT_TIMER: u32 = 0x320;
const LVT_ERROR: u32 = 0x370;
const INITIAL_COUNT: u32 = 0x380;
const CURRENT_COUNT: u32 = 0x390;
const DIVIDE: u32 = 0x3e0;

const MASKED: u32 = 1 << 16;
const SOFTWARE_ENABLE: u32 = 1 << 8;
const DIVIDE_BY_1: u32 = 0b1011;

/// Vector of the APIC timer (one-shot, armed by the executor's idle loop).
pub const TIMER_VECTOR: u8 = 32;
/// Vector the APIC uses for spurious interrupts; they need no EOI.
pub const SPURIOUS_VECTOR: u8 = 255;

#[derive(Clone, Copy, Debug)]
pub enum LocalApic {
    X2,
    Mmio(u64),
}

impl LocalApic {
    /// Enables the APIC with the timer and error interrupts masked.
    pub fn init() -> Self {
        let mut base = Msr::new(IA32_APIC_BASE);
        // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; setting the
        // enable bits keeps the base address where the firmware put it.
        let value = unsafe { base.read() };
        // SAFETY: enabling the xAPIC keeps its base address; x2APIC may
        // only be entered from the enabled xAPIC state, hence two writes.
        unsafe { base.write(value | BASE_ENABLE) };
        let apic = if __cpuid(1).ecx & (1 << 21) != 0 {
            // SAFETY: CPUID reports x2APIC support, and the xAPIC is enabled.
            unsafe { base.write(value | BASE_ENABLE | BASE_X2APIC) };
            Self::X2
        } else {
            let mmio = value & 0xf_ffff_f000;
            assert!(crate::paging::in_device_window(mmio), "local APIC at {mmio:#x}, outside the mapped device window");
            Self::Mmio(mmio)
        };
        apic.write(TPR, 0);
        apic.write(LVT_ERROR, MASKED);
        apic.write(DIVIDE, DIVIDE_BY_1);
        apic.write(LVT_TIMER, MASKED | u32::from(TIMER_VECTOR));
        apic.write(SVR, SOFTWARE_ENABLE | u32::from(SPURIOUS_VECTOR));
        apic
    }

    fn read(self, reg: u32) -> u32 {
        match self {
            // SAFETY: x2APIC register MSRs are 0x800 + offset / 16.
            Self::X2 => unsafe { Msr::new(0x800 + (reg >> 4)).read() as u32 },
            // SAFETY: an APIC register inside the mapped MMIO page.
            Self::Mmio(base) => unsafe { ((base + u64::from(reg)) as *const u32).read_volatile() },
        }
    }

    fn write(self, reg: u32, value: u32) {
        match self {
            // SAFETY: as in `read`.
            Self::X2 => unsafe { Msr::new(0x800 + (reg >> 4)).write(u64::from(value)) },
            // SAFETY: as in `read`.
            Self::Mmio(base) => unsafe { ((base + u64::from(reg)) as *mut u32).write_volatile(value) },
        }
    }

    pub fn id(self) -> u8 {
        match self {
            Self::X2 => self.read(ID) as u8,
            Self::Mmio(_) => (self.read(ID) >> 24) as u8,
        }
    }

    pub fn end_of_interrupt(self) {
        self.write(EOI, 0);
    }

    /// One-shot timer: interrupts after `count` ticks (masked: counts only).
    pub fn start_timer(self, count: u32, masked: bool) {
        let mask = if masked { MASKED } else { 0 };
        self.write(LVT_TIMER, mask | u32::from(TIMER_VECTOR));
        self.write(INITIAL_COUNT, count);
    }

    pub fn current_count(self) -> u32 {
        self.read(CURRENT_COUNT)
    }
}
