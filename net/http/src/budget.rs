//! The memory budget shared by the connections of a server: bodies are
//! paid for before they are buffered, and paid back when dropped.

use alloc::rc::Rc;
use core::cell::Cell;

/// Bytes of buffered bodies that a server's connections may hold at once.
/// Clones share the same budget.
#[derive(Clone, Debug)]
pub struct Budget(Rc<Counts>);

#[derive(Debug)]
struct Counts {
    capacity: usize,
    used: Cell<usize>,
}

impl Budget {
    /// A budget of `capacity` bytes, none in use.
    pub fn new(capacity: usize) -> Self {
        Self(Rc::new(Counts { capacity, used: Cell::new(0) }))
    }

    /// The budget's size in bytes.
    pub fn capacity(&self) -> usize {
        self.0.capacity
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.0.used.get()
    }

    /// Reserves `bytes`, or `None` when they do not fit.
    pub fn reserve(&self, bytes: usize) -> Option<Reservation> {
        let mut reservation = Reservation { budget: self.clone(), bytes: 0 };
        reservation.resize(bytes).then_some(reservation)
    }

    fn take(&self, bytes: usize) -> bool {
        let used = self.used();
        match used.checked_add(bytes) {
            Some(total) if total <= self.0.capacity => {
                self.0.used.set(total);
                true
            }
            _ => false,
        }
    }

    fn give_back(&self, bytes: usize) {
        self.0.used.set(self.used() - bytes);
    }
}

/// Bytes taken from a [`Budget`]; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Budget,
    bytes: usize,
}

impl Reservation {
    /// The bytes this reservation holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Grows or shrinks the reservation to `bytes`; growing fails (and
    /// changes nothing) when the budget has no room.
    pub fn resize(&mut self, bytes: usize) -> bool {
        if bytes > self.bytes {
            if !self.budget.take(bytes - self.bytes) {
                return false;
            }
        } else {
            self.budget.give_back(self.bytes - bytes);
        }
        self.bytes = bytes;
        true
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}
