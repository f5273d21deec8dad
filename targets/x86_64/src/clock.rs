//! Time on bare metal, set up on first use so an image that never asks for
//! the time boots without the 5 ms calibration: the invariant TSC is the
//! monotonic clock, calibrated with the APIC timer against the PIT; the RTC
//! gives the wall clock at that moment. The same setup brings up the local
//! and I/O APICs, which the timer and device interrupts need.

use crate::{apic::LocalApic, ioapic, pit, rtc, serial};
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;
use x86_64::instructions::port::Port;

pub struct Clock {
    pub apic: LocalApic,
    tsc_base: u64,
    /// Nanoseconds per TSC tick, as a 32.32 fixed-point number.
    ns_per_tick: u64,
    apic_hz: u64,
    /// The wall clock at `tsc_base`: from the RTC at boot, and again after
    /// each restore from a snapshot.
    unix_ns_at_base: AtomicU64,
}

static CLOCK: Once<Clock> = Once::new();

fn mask_legacy_pic() {
    // SAFETY: OCW1 to both i8259s masks every line; on machines without
    // them (microvm with pic=off) the writes go nowhere.
    unsafe {
        Port::<u8>::new(0x21).write(0xff);
        Port::<u8>::new(0xa1).write(0xff);
    }
}

pub fn get() -> &'static Clock {
    CLOCK.call_once(|| {
        crate::interrupts::install_interrupt_gates();
        mask_legacy_pic();
        let lines = ioapic::init();
        let apic = LocalApic::init();
        // The console's input carries the VMM's restore signal.
        ioapic::route(serial::IRQ, crate::interrupts::CONSOLE_VECTOR, apic.id());
        serial::listen();
        let rates = pit::calibrate(apic).unwrap_or_else(|| {
            unikernel_core::println!("no clock source: the PIT does not count (QEMU: do not disable it)");
            unikernel_core::exit::exit(unikernel_core::exit::FAILURE)
        });
        // SAFETY: RDTSC has no side effects.
        let tsc_base = unsafe { core::arch::x86_64::_rdtsc() };
        let unix = rtc::unix_seconds();
        // CPUID 0x8000_0007 EDX bit 8: the TSC ticks at a constant rate
        // through power states; without it the clock may drift.
        let invariant = core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0;
        log::debug!(
            "clock: TSC {} kHz ({}) and APIC timer {} kHz, calibrated against the PIT; {:?} APIC; {lines} I/O APIC lines; RTC {}",
            rates.tsc_hz / 1000,
            if invariant { "invariant" } else { "not advertised as invariant" },
            rates.apic_hz / 1000,
            apic,
            if unix.is_some() { "read" } else { "missing: wall clock starts at 1970" }
        );
        Clock {
            apic,
            tsc_base,
            ns_per_tick: ((1_000_000_000u128 << 32) / u128::from(rates.tsc_hz)) as u64,
            apic_hz: rates.apic_hz,
            unix_ns_at_base: AtomicU64::new(unix.unwrap_or(0) * 1_000_000_000),
        }
    })
}

impl Clock {
    pub fn now_ns(&self) -> u64 {
        // SAFETY: RDTSC has no side effects.
        let ticks = unsafe { core::arch::x86_64::_rdtsc() }.saturating_sub(self.tsc_base);
        ((u128::from(ticks) * u128::from(self.ns_per_tick)) >> 32) as u64
    }

    pub fn unix_ns(&self) -> u64 {
        self.unix_ns_at_base.load(Ordering::Acquire) + self.now_ns()
    }

    /// After a restore: the monotonic clock went on from the snapshot's
    /// reading (the VMM stopped it while the guest was saved), the world's
    /// did not. The RTC counts host time, so re-reading it puts the wall
    /// clock right again, to the second as at boot.
    pub fn rebase_wall_clock(&self) {
        let Some(unix) = rtc::unix_seconds() else { return };
        let before = self.unix_ns();
        let base = (unix * 1_000_000_000).saturating_sub(self.now_ns());
        self.unix_ns_at_base.store(base, Ordering::Release);
        log::info!(
            "clock: wall clock re-read from the RTC, moved by {} s",
            (self.unix_ns() as i64 - before as i64) / 1_000_000_000
        );
    }

    /// Arms the APIC timer to interrupt in `ns` (at least one tick; long
    /// waits are cut to the 32-bit counter and the idle loop re-arms).
    pub fn arm_timer(&self, ns: u64) {
        // Rounded up: a timer that fires early only costs another idle round.
        let ticks = (u128::from(ns) * u128::from(self.apic_hz)).div_ceil(1_000_000_000).clamp(1, u128::from(u32::MAX));
        self.apic.start_timer(ticks as u32, false);
    }
}
