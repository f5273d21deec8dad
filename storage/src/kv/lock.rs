//! A first-come-first-served async lock for one executor thread: appends
//! to the log must not interleave, and a task waiting for the disk must not
//! block the others.
//!
//! Cancel-safe: a waiter whose future is dropped (a `timeout` around
//! `store.put`) leaves the queue, and if it was first in line when the lock
//! fell free it passes the wake-up on, so the next waiter is never
//! stranded. (`futures-util`'s `Mutex` needs `std`; `embassy-sync`'s keeps
//! one waker and is not first-come-first-served: a small queue fits better.)

use alloc::collections::VecDeque;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

#[derive(Default)]
pub struct Lock {
    held: Cell<bool>,
    /// Waiters in arrival order, by ticket.
    queue: RefCell<VecDeque<(u64, Waker)>>,
    next_ticket: Cell<u64>,
}

pub struct Guard<'a>(&'a Lock);

impl Lock {
    pub fn lock(&self) -> Acquire<'_> {
        Acquire { lock: self, ticket: None }
    }

    /// Wakes the first waiter, which takes the lock when it runs.
    fn wake_first(&self) {
        if let Some((_, waker)) = self.queue.borrow().front() {
            waker.wake_by_ref();
        }
    }
}

/// The future of [`Lock::lock`].
pub struct Acquire<'a> {
    lock: &'a Lock,
    /// Our place in the queue, once queued.
    ticket: Option<u64>,
}

impl<'a> Future for Acquire<'a> {
    type Output = Guard<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Guard<'a>> {
        let lock = self.lock;
        let mut queue = lock.queue.borrow_mut();
        match self.ticket {
            None if !lock.held.get() && queue.is_empty() => {}
            None => {
                let ticket = lock.next_ticket.get();
                lock.next_ticket.set(ticket.wrapping_add(1));
                queue.push_back((ticket, cx.waker().clone()));
                self.ticket = Some(ticket);
                return Poll::Pending;
            }
            Some(ticket) if !lock.held.get() && queue.front().is_some_and(|(t, _)| *t == ticket) => {
                queue.pop_front();
                self.ticket = None;
            }
            Some(ticket) => {
                if let Some((_, waker)) = queue.iter_mut().find(|(t, _)| *t == ticket) {
                    waker.clone_from(cx.waker());
                }
                return Poll::Pending;
            }
        }
        lock.held.set(true);
        Poll::Ready(Guard(lock))
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else { return };
        let was_first = {
            let mut queue = self.lock.queue.borrow_mut();
            let Some(at) = queue.iter().position(|(t, _)| *t == ticket) else { return };
            queue.remove(at);
            at == 0
        };
        // We may have been woken for a free lock: hand the wake-up on.
        if was_first && !self.lock.held.get() {
            self.lock.wake_first();
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.held.set(false);
        self.0.wake_first();
    }
}
