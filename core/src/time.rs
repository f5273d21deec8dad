//! Clocks: [`Instant`] (monotonic) and [`SystemTime`] (wall clock, UTC),
//! and the [`Clock`] a target implements for them.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
pub use core::time::Duration;

/// The target's clock and idle halt, functions bound by
/// [`implement!`](crate::time_implement) at link time like [`crate::bus`]:
/// a vtable would link the clock (on x86_64 the APIC, PIT, RTC and the
/// interrupt gates) into images that never read the time or wait.
pub trait Clock {
    /// Monotonic nanoseconds since an arbitrary start (boot, or the first
    /// call where the clock is calibrated lazily).
    fn now_ns() -> u64;
    /// Nanoseconds since the Unix epoch, UTC.
    fn unix_time_ns() -> u64;
    /// Sleeps the CPU until an interrupt or until `deadline_ns` (in
    /// [`Clock::now_ns`] time), whichever comes first, provided that
    /// `still_idle` holds once interrupts are off: a wake-up that lands
    /// between the caller's check and the halt is not lost. A notify from
    /// [`crate::Platform::notify`] ends it early.
    fn idle(deadline_ns: Option<u64>, still_idle: &dyn Fn() -> bool);
}

unsafe extern "Rust" {
    safe fn __unikernel_clock_now_ns() -> u64;
    safe fn __unikernel_clock_unix_time_ns() -> u64;
    safe fn __unikernel_clock_idle(deadline_ns: Option<u64>, still_idle: &dyn Fn() -> bool);
}

/// Binds a target's [`Clock`]: `unikernel_core::time::implement!(Clock for
/// X86Clock);`. Once per image.
#[macro_export]
macro_rules! time_implement {
    (Clock for $t:ty) => {
        const _: () = {
            use $crate::time::Clock;
            #[unsafe(no_mangle)]
            fn __unikernel_clock_now_ns() -> u64 {
                <$t as Clock>::now_ns()
            }
            #[unsafe(no_mangle)]
            fn __unikernel_clock_unix_time_ns() -> u64 {
                <$t as Clock>::unix_time_ns()
            }
            #[unsafe(no_mangle)]
            fn __unikernel_clock_idle(deadline_ns: Option<u64>, still_idle: &dyn Fn() -> bool) {
                <$t as Clock>::idle(deadline_ns, still_idle)
            }
        };
    };
}
pub use time_implement as implement;

/// The checks every target's [`Clock::idle`] makes before it halts, with
/// interrupts off: whether there is still nothing to do, whether the
/// deadline has passed, and a deadlock (nothing to wait for) that would
/// halt forever, which ends the run. Returns how long to arm the timer
/// for (`Some(None)`: no timer), or `None` when the caller must not halt.
pub fn before_idle(deadline_ns: Option<u64>, still_idle: &dyn Fn() -> bool) -> Option<Option<u64>> {
    if !still_idle() {
        return None;
    }
    match deadline_ns {
        Some(deadline) => {
            let now = __unikernel_clock_now_ns();
            (deadline > now).then(|| Some(deadline - now))
        }
        None if !crate::interrupt::any_registered() => {
            crate::println!("all tasks are blocked with no timer pending and no interrupt source: deadlock");
            crate::exit::exit(crate::exit::FAILURE)
        }
        None => Some(None),
    }
}

/// See [`Clock::idle`]; the executor's halt.
pub(crate) fn idle(deadline_ns: Option<u64>, still_idle: &dyn Fn() -> bool) {
    __unikernel_clock_idle(deadline_ns, still_idle)
}

/// A point on the monotonic clock, with nanosecond resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The monotonic clock's current reading.
    pub fn now() -> Self {
        Self(__unikernel_clock_now_ns())
    }

    /// The clock's reading in nanoseconds (its zero is arbitrary).
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time since `earlier`; zero if `earlier` is later.
    pub fn duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Time since this instant.
    pub fn elapsed(self) -> Duration {
        Instant::now().duration_since(self)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(nanos(d)))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.duration_since(earlier)
    }
}

/// Wall-clock time: nanoseconds since 1970-01-01T00:00:00Z. Displays as
/// RFC 3339 (`2026-11-26T17:30:05.123Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SystemTime(u64);

impl SystemTime {
    /// 1970-01-01T00:00:00Z, where `SystemTime` counts from.
    pub const UNIX_EPOCH: SystemTime = SystemTime(0);

    /// The current wall-clock time.
    pub fn now() -> Self {
        Self(__unikernel_clock_unix_time_ns())
    }

    /// Time since `earlier`, or `None` when `earlier` is later.
    pub fn duration_since(self, earlier: SystemTime) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_nanos)
    }
}

/// (year, month, day) of a day count since 1970-01-01, proleptic
/// Gregorian; Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

impl fmt::Display for SystemTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000_000;
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let rest = secs % 86_400;
        let millis = self.0 / 1_000_000 % 1000;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        )
    }
}

/// Days since 1970-01-01 of a (year, month, day); the inverse of
/// `civil_from_days`, for turning an RTC reading into [`SystemTime`].
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_display_and_calendar_round_trip() {
        assert_eq!(SystemTime(0).to_string(), "1970-01-01T00:00:00.000Z");
        // 2000-02-29T12:34:56.789Z, a leap day in a century leap year.
        let t = SystemTime((days_from_civil(2000, 2, 29) as u64 * 86_400 + 45_296) * 1_000_000_000 + 789_000_000);
        assert_eq!(t.to_string(), "2000-02-29T12:34:56.789Z");
        // Fixed anchors, then the round trip.
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for days in [-1, 0, 59, 365, 10_957, 20_000, 24_000, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
