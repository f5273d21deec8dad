//! Time: the generic timer's virtual counter is the monotonic clock (its
//! frequency is in CNTFRQ_EL0, no calibration needed), its compare value
//! the wake-up timer (PPI 11, interrupt 27, as the architecture's server
//! base system recommends and QEMU and Firecracker wire it); the PL031 RTC
//! gives the wall clock at that moment. Set up on first use, with the GIC.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTVCT_EL0, Readable, Writeable};
use arm_gic::{IntId, Trigger};
use spin::Once;

/// The virtual timer's interrupt.
pub const TIMER: IntId = IntId::ppi(11);

pub struct Clock {
    counter_base: u64,
    /// Nanoseconds per counter tick, as a 32.32 fixed-point number.
    ns_per_tick: u64,
    hz: u64,
    unix_ns_at_base: u64,
}

static CLOCK: Once<Clock> = Once::new();

fn counter() -> u64 {
    // Without the barrier the read may happen before earlier instructions.
    barrier::isb(barrier::SY);
    CNTVCT_EL0.get()
}

/// The PL031's data register: seconds since the epoch.
fn rtc_seconds() -> Option<u64> {
    let base = crate::devicetree::device("arm,pl031")?;
    // SAFETY: the device tree names a PL031 there, mapped as device memory
    // (below RAM); reading its data register has no side effects.
    Some(u64::from(unsafe { (base as *const u32).read_volatile() }))
}

pub fn get() -> &'static Clock {
    CLOCK.call_once(|| {
        let hz = CNTFRQ_EL0.get();
        if hz == 0 {
            unikernel_core::println!("no clock source: CNTFRQ_EL0 is 0");
            unikernel_core::exit::exit(unikernel_core::exit::FAILURE)
        }
        if let Err(e) = crate::gic::enable(TIMER, Trigger::Level) {
            unikernel_core::println!("GICv3: cannot enable the timer: {e}");
            unikernel_core::exit::exit(unikernel_core::exit::FAILURE)
        }
        let unix = rtc_seconds();
        log::debug!(
            "clock: generic timer {} kHz; RTC {}",
            hz / 1000,
            if unix.is_some() { "read" } else { "missing: wall clock starts at 1970" }
        );
        Clock {
            counter_base: counter(),
            ns_per_tick: ((1_000_000_000u128 << 32) / u128::from(hz)) as u64,
            hz,
            unix_ns_at_base: unix.unwrap_or(0) * 1_000_000_000,
        }
    })
}

impl Clock {
    pub fn now_ns(&self) -> u64 {
        let ticks = counter().saturating_sub(self.counter_base);
        ((u128::from(ticks) * u128::from(self.ns_per_tick)) >> 32) as u64
    }

    pub fn unix_ns(&self) -> u64 {
        self.unix_ns_at_base + self.now_ns()
    }

    /// Arms the timer to interrupt in `ns` (rounded up to a tick).
    pub fn arm_timer(&self, ns: u64) {
        let ticks = (u128::from(ns) * u128::from(self.hz)).div_ceil(1_000_000_000).max(1);
        CNTV_CVAL_EL0.set(counter().saturating_add(ticks.min(u128::from(u64::MAX)) as u64));
        CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    }
}

/// The timer's interrupt: turn it off so its level drops; the executor
/// re-arms it for its next deadline.
pub fn timer_fired() {
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
}
