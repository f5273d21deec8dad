//! A spin lock that the in-guest test runner can account for.
//!
//! Bare metal cannot unwind: a panic abandons whatever guards were on its
//! stack, and a lock left held would hang the next test that takes it. Every
//! guard of this [`Mutex`] counts itself in [`held`], so the runner can tell
//! that the remaining tests cannot run safely instead of hanging. Hold it
//! only in synchronous code (never across an `.await`: use
//! [`super::Mutex`] there), as with `spin`.

use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};

static HELD: AtomicUsize = AtomicUsize::new(0);

/// Guards of [`Mutex`]es alive right now.
pub fn held() -> usize {
    HELD.load(Ordering::Acquire)
}

/// A spin lock whose guards are counted (see the module docs).
#[derive(Debug, Default)]
pub struct Mutex<T>(spin::Mutex<T>);

/// Access to a [`Mutex`]'s value; unlocks when dropped.
#[derive(Debug)]
pub struct MutexGuard<'a, T>(spin::MutexGuard<'a, T>);

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`; `const`, so it can be a `static`.
    pub const fn new(value: T) -> Self {
        Self(spin::Mutex::new(value))
    }

    /// Waits (spinning) for the lock.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        let guard = self.0.lock();
        HELD.fetch_add(1, Ordering::AcqRel);
        MutexGuard(guard)
    }

    /// The lock, if nobody holds it.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let guard = self.0.try_lock()?;
        HELD.fetch_add(1, Ordering::AcqRel);
        Some(MutexGuard(guard))
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        HELD.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_are_counted_until_dropped() {
        let lock = Mutex::new(1);
        let before = held();
        let mut guard = lock.lock();
        *guard += 1;
        assert_eq!(held(), before + 1);
        assert!(lock.try_lock().is_none(), "held");
        drop(guard);
        assert_eq!(held(), before);
        assert_eq!(*lock.try_lock().expect("free again"), 2);
        core::mem::forget(lock.lock()); // what a panic on bare metal does
        assert_eq!(held(), before + 1);
    }
}
