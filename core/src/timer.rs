//! Timers: [`sleep`], [`sleep_until`], [`timeout`], [`interval`]. Pending
//! timers live in one ordered map; the executor wakes the expired ones and
//! tells the platform when the next one is due, so the CPU can halt until
//! then.

use crate::time::{Duration, Instant};
use alloc::collections::BTreeMap;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};
use spin::Mutex;

/// Pending timers by (deadline in ns, unique id).
static TIMERS: Mutex<BTreeMap<(u64, u64), Waker>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The earliest pending deadline, in ns.
pub(crate) fn next_deadline() -> Option<u64> {
    TIMERS.lock().first_key_value().map(|(k, _)| k.0)
}

/// Timers registered and not yet fired or cancelled.
pub fn pending() -> usize {
    TIMERS.lock().len()
}

/// Drops every pending timer (see `executor::reset`).
pub(crate) fn clear() {
    // Taken out first: dropping wakers may drop tasks, whose sleeps lock TIMERS.
    let timers = core::mem::take(&mut *TIMERS.lock());
    drop(timers);
}

/// Wakes every timer due at `now`; returns how many.
pub(crate) fn fire_expired(now: u64) -> usize {
    let mut fired = 0;
    loop {
        let waker = {
            let mut timers = TIMERS.lock();
            match timers.first_key_value() {
                Some((key, _)) if key.0 <= now => timers.pop_first().map(|(_, w)| w),
                _ => None,
            }
        };
        match waker {
            Some(w) => {
                w.wake();
                fired += 1;
            }
            None => {
                if fired > 0 {
                    crate::trace_event!(Timers, fired, 0);
                }
                return fired;
            }
        }
    }
}

/// Completes at its deadline. Dropping it cancels the timer.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    key: Option<(u64, u64)>,
}

impl Sleep {
    /// When this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    fn cancel(&mut self) {
        if let Some(key) = self.key.take() {
            TIMERS.lock().remove(&key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            self.cancel();
            return Poll::Ready(());
        }
        let deadline = self.deadline.as_nanos();
        let key = *self.key.get_or_insert_with(|| (deadline, NEXT_ID.fetch_add(1, Ordering::Relaxed)));
        // (Re-)register: the task may have moved to another waker. A timer
        // already fired and removed is registered again, still pending.
        TIMERS.lock().insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Completes once `duration` has passed.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Completes at `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep { deadline, key: None }
}

/// [`timeout`] ran out before the future completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

impl core::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl core::error::Error for Elapsed {}

/// Runs `future` for at most `duration`; when time runs out the future is
/// dropped (cancelled) and the result is `Err(Elapsed)`.
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout { future, sleep: sleep(duration) }
}

/// `future` bounded by a deadline; made by [`timeout`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: never moved out of `self`,
        // which is pinned; `sleep` is Unpin.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above.
        if let Poll::Ready(v) = unsafe { Pin::new_unchecked(&mut this.future) }.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        Pin::new(&mut this.sleep).poll(cx).map(|()| Err(Elapsed))
    }
}

/// Ticks every `period`, starting one period from now. A late tick is not
/// made up for several times: the next one is scheduled from the late one.
pub fn interval(period: Duration) -> Interval {
    assert!(!period.is_zero(), "interval period must be non-zero");
    Interval { next: Instant::now() + period, period }
}

/// A periodic tick; made by [`interval`].
#[derive(Debug)]
pub struct Interval {
    next: Instant,
    period: Duration,
}

impl Interval {
    /// Waits for the next tick and returns its scheduled time.
    pub async fn tick(&mut self) -> Instant {
        let at = self.next;
        sleep_until(at).await;
        let now = Instant::now();
        self.next = if now >= at + self.period { now + self.period } else { at + self.period };
        at
    }
}
