//! Time for the loop's deadlines: the unikernel's timers in production, a
//! virtual clock in tests ([`crate::testing`]).

use core::future::Future;
use core::pin::pin;
use core::time::Duration;
use futures_util::future::{Either, select};
use unikernel_core::time::Instant;

/// A monotonic clock with timers.
pub trait Clock {
    /// Time since the clock's (arbitrary) zero.
    fn now(&self) -> Duration;
    /// Completes once [`Clock::now`] has reached `at`.
    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()>;
}

/// The runtime's clock and timers (`unikernel_core::timer`).
#[derive(Clone, Copy, Debug, Default)]
pub struct UnikernelClock;

impl Clock for UnikernelClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(Instant::now().as_nanos())
    }

    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> {
        unikernel_core::timer::sleep(at.saturating_sub(self.now()))
    }
}

/// Runs `future` until `deadline`: `None` when time ran out first (the
/// future is dropped, i.e. cancelled).
pub(crate) async fn before<T>(clock: &impl Clock, deadline: Duration, future: impl Future<Output = T>) -> Option<T> {
    match select(pin!(future), pin!(clock.sleep_until(deadline))).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(((), _)) => None,
    }
}
