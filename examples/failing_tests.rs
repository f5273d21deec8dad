//! A test image with failures, to show how the in-guest harness reports
//! them: a test returning `Err` and a panicking one fail, and the tests after
//! them still run, with what the panicked test's other futures held
//! dropped. A panic that leaves a lock held ends the run on bare metal (it
//! cannot unwind, so the next test to take the lock would hang). The image
//! exits non-zero.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use core::sync::atomic::{AtomicUsize, Ordering};
use unikernel::Error;
use unikernel::prelude::*;
use unikernel::sync::blocking::Mutex;

unikernel::test_main!();

#[unikernel::test]
fn a_passes() {}

#[unikernel::test]
fn b_returns_an_error() -> Result<(), Error> {
    Err(Error::msg("expected failure"))
}

#[unikernel::test]
fn c_panics() {
    panic!("expected panic");
}

#[unikernel::test]
fn d_runs_after_a_panic() {
    assert_eq!(core::hint::black_box(2) + 2, 4);
}

static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Stands for a socket or a file: counted when dropped.
struct Resource;

impl Drop for Resource {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

#[unikernel::test]
async fn e_panics_in_a_task_while_main_holds_a_resource() {
    let _held = Resource;
    spawn(async { panic!("expected panic in a task") }).await;
}

#[unikernel::test]
fn f_the_resource_main_held_was_dropped() -> Result<(), Error> {
    match DROPPED.load(Ordering::SeqCst) {
        1 => Ok(()),
        n => Err(Error::msg(alloc::format!("{n} resources dropped, expected 1"))),
    }
}

static LOCK: Mutex<u32> = Mutex::new(0);

#[unikernel::test]
fn y_panics_holding_a_lock() {
    let mut guard = LOCK.lock();
    *guard += 1;
    panic!("expected panic holding a lock");
}

#[unikernel::test]
fn z_takes_that_lock() {
    *LOCK.lock() += 1;
}
