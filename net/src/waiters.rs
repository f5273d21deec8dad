//! Tasks waiting for one event: every one of them is woken, unlike an
//! `AtomicWaker`, which keeps only the last task that registered.

use alloc::vec::Vec;
use core::task::Waker;

#[derive(Default)]
pub struct Waiters(Vec<Waker>);

impl Waiters {
    /// Remembers `waker` (once, however often its task polls).
    pub fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }

    /// Wakes every waiting task; each registers again if it still waits.
    pub fn wake_all(&mut self) {
        for waker in self.0.drain(..) {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Waiters;
    use alloc::sync::Arc;
    use alloc::task::Wake;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use core::task::Waker;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn every_waiting_task_is_woken_once() {
        let (a, b) = (Arc::new(Count(AtomicUsize::new(0))), Arc::new(Count(AtomicUsize::new(0))));
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        let mut waiters = Waiters::default();
        for waker in [&wa, &wb, &wa] {
            waiters.register(waker);
        }
        waiters.wake_all();
        waiters.wake_all();
        assert_eq!((a.0.load(Ordering::Relaxed), b.0.load(Ordering::Relaxed)), (1, 1));
    }
}
