//! Synchronization between tasks.
//!
//! - [`Mutex`] (and [`RwLock`], [`Semaphore`]): async locks whose guards may
//!   be held across `.await`. Waiters are served first come, first served,
//!   and a waiter whose future is dropped (a `timeout` around it) leaves the
//!   queue and hands on a wake-up it was given, so the next one is never
//!   stranded. [`WaitQueue`] is a notify (`wake` one, `wake_all`), and
//!   [`WaitCell`] wakes one waiting task. From `maitake-sync`: FIFO
//!   intrusive wait lists, no allocation per waiter, no limit on waiters.
//! - [`Channel`], [`Signal`] and [`Pipe`]: bounded queues of values, a
//!   latest-value notification and a byte pipe, from `embassy-sync` (usable
//!   in a `static`). Each side keeps one waker: two tasks waiting on the
//!   same side wake each other in turn until they are served, so give a
//!   channel one receiver, and prefer one waiting sender (use a [`Mutex`]
//!   where many tasks queue). The rest of `embassy-sync` (`PubSubChannel`,
//!   `Watch`, ...) is in [`embassy_sync`], with [`RawMutex`] as its lock.
//! - [`blocking::Mutex`]: a spin lock for synchronous code and statics.
//!
//! Two crates because neither has it all: `maitake-sync` has no channel,
//! and `embassy-sync`'s `Mutex` keeps one waker and lets a newcomer take
//! the lock ahead of woken waiters (its `FairSemaphore` has a fixed queue
//! and strands the next waiter when a woken one is dropped).

pub mod blocking;

pub use embassy_sync;
pub use maitake_sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Semaphore, WaitCell, WaitQueue};

/// The lock under `embassy-sync`'s primitives: a critical section, which
/// each target provides (interrupts off on bare metal, a global lock hosted).
pub type RawMutex = embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
/// A queue of at most `N` values; `send` waits while it is full.
pub type Channel<T, const N: usize> = embassy_sync::channel::Channel<RawMutex, T, N>;
/// The sending half of a [`Channel`] (`channel.sender()`).
pub type Sender<'a, T, const N: usize> = embassy_sync::channel::Sender<'a, RawMutex, T, N>;
/// The receiving half of a [`Channel`] (`channel.receiver()`).
pub type Receiver<'a, T, const N: usize> = embassy_sync::channel::Receiver<'a, RawMutex, T, N>;
/// The latest value signalled, taken by one waiting task.
pub type Signal<T> = embassy_sync::signal::Signal<RawMutex, T>;
/// A byte pipe holding at most `N` bytes.
pub type Pipe<const N: usize> = embassy_sync::pipe::Pipe<RawMutex, N>;
