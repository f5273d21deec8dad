//! A first-come-first-served async lock for one executor thread: appends
//! to the log must not interleave, and a task waiting for the disk must not
//! block the others.

use alloc::collections::VecDeque;
use core::cell::{Cell, RefCell};
use core::future::poll_fn;
use core::task::{Poll, Waker};

#[derive(Default)]
pub struct Lock {
    held: Cell<bool>,
    waiting: RefCell<VecDeque<Waker>>,
}

pub struct Guard<'a>(&'a Lock);

impl Lock {
    pub async fn lock(&self) -> Guard<'_> {
        poll_fn(|cx| {
            if self.held.replace(true) {
                self.waiting.borrow_mut().push_back(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(Guard(self))
            }
        })
        .await
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.held.set(false);
        if let Some(next) = self.0.waiting.borrow_mut().pop_front() {
            next.wake();
        }
    }
}
