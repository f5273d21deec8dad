//! Statics that boot code fills in place.

use core::cell::UnsafeCell;

/// A static that is written during boot, on one CPU with interrupts off,
/// and afterwards only read (or handed to the CPU).
#[repr(transparent)]
pub struct BootCell<T>(UnsafeCell<T>);

// SAFETY: written only during single-threaded boot (see each use).
unsafe impl<T> Sync for BootCell<T> {}

impl<T> BootCell<T> {
    pub const fn new(value: T) -> Self {
        Self(UnsafeCell::new(value))
    }

    pub fn get(&self) -> *mut T {
        self.0.get()
    }
}
