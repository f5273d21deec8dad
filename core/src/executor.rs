//! The executor: single core, cooperative, no busy waiting.
//!
//! [`block_on`] polls the main future and every [`spawn`]ed task when woken.
//! With nothing to run it fires expired timers, and when still nothing is
//! ready it asks the platform to halt the CPU until the next timer deadline
//! or a device interrupt. Tasks need not be `Send`: they never leave the
//! executor's CPU (Embassy and tokio's `LocalSet` work the same way).

use crate::platform;
use crate::time::Instant;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::sync::Arc;
use alloc::task::Wake;
use core::cell::{RefCell, UnsafeCell};
use core::future::Future;
use core::pin::{Pin, pin};
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use spin::Mutex;

type BoxedTask = Pin<Box<dyn Future<Output = ()>>>;

struct Task {
    /// `None` once the task has completed.
    future: UnsafeCell<Option<BoxedTask>>,
    /// In the run queue already: wakes in a row enqueue it once.
    queued: AtomicBool,
}

// SAFETY: there is one CPU and one executor. `future` is only touched by the
// executor loop, never through a waker; wakers only use `queued` and the
// run queue, which is locked. Interrupt handlers, which may wake tasks, run
// only while the executor halts, so they never interrupt a lock holder.
unsafe impl Send for Task {}
// SAFETY: as above.
unsafe impl Sync for Task {}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            RUN_QUEUE.lock().push_back(self);
        }
    }
}

static RUN_QUEUE: Mutex<VecDeque<Arc<Task>>> = Mutex::new(VecDeque::new());
static MAIN_WOKEN: AtomicBool = AtomicBool::new(false);
static RUNNING: AtomicBool = AtomicBool::new(false);

struct MainWaker;

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        MAIN_WOKEN.store(true, Ordering::Release);
    }
}

/// Starts `future` as a task; its output comes from the [`JoinHandle`].
/// Dropping the handle detaches the task, which runs on.
///
/// # Panics
/// When called from another thread than the executor's (hosted target):
/// the future would move between threads although it need not be `Send`.
pub fn spawn<F: Future + 'static>(future: F) -> JoinHandle<F::Output> {
    assert!(platform::get().on_executor_thread(), "spawn called outside the executor's thread");
    let state = Rc::new(RefCell::new(JoinState { output: None, waiter: None }));
    let done = state.clone();
    let wrapped = async move {
        let output = future.await;
        let mut state = done.borrow_mut();
        state.output = Some(output);
        if let Some(waiter) = state.waiter.take() {
            waiter.wake();
        }
    };
    let task = Arc::new(Task { future: UnsafeCell::new(Some(Box::pin(wrapped))), queued: AtomicBool::new(false) });
    Waker::from(task).wake();
    JoinHandle { state }
}

struct JoinState<T> {
    output: Option<T>,
    waiter: Option<Waker>,
}

/// Completes with the output of a [`spawn`]ed task.
#[must_use = "dropping a JoinHandle detaches the task"]
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

impl<T> Future for JoinHandle<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.state.borrow_mut();
        match state.output.take() {
            Some(output) => Poll::Ready(output),
            None => {
                state.waiter = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Runs `future` to completion on this CPU, together with every spawned
/// task, halting the CPU whenever nothing is ready.
///
/// # Panics
/// When called from inside the executor (a task cannot block it).
pub fn block_on<F: Future>(future: F) -> F::Output {
    assert!(!RUNNING.swap(true, Ordering::AcqRel), "block_on called inside the executor");
    let mut future = pin!(future);
    let main_waker = Waker::from(Arc::new(MainWaker));
    let mut cx = Context::from_waker(&main_waker);
    MAIN_WOKEN.store(true, Ordering::Release);
    loop {
        if MAIN_WOKEN.swap(false, Ordering::AcqRel)
            && let Poll::Ready(output) = future.as_mut().poll(&mut cx)
        {
            RUNNING.store(false, Ordering::Release);
            return output;
        }
        run_ready_tasks();
        crate::timer::fire_expired(Instant::now().as_nanos());
        let idle = || RUN_QUEUE.lock().is_empty() && !MAIN_WOKEN.load(Ordering::Acquire);
        if idle() {
            platform::get().idle(crate::timer::next_deadline(), &idle);
        }
    }
}

/// Forgets every task and timer and leaves the executor idle: the state a
/// test starts from, whatever the previous test (perhaps one that panicked
/// out of `block_on`) left behind.
pub(crate) fn reset() {
    RUN_QUEUE.lock().clear();
    crate::timer::clear();
    MAIN_WOKEN.store(false, Ordering::Release);
    RUNNING.store(false, Ordering::Release);
}

/// Polls each task queued when this round started; tasks woken meanwhile
/// wait for the next round, so the main future is not starved.
fn run_ready_tasks() {
    let ready = RUN_QUEUE.lock().len();
    for _ in 0..ready {
        let Some(task) = RUN_QUEUE.lock().pop_front() else { break };
        task.queued.store(false, Ordering::Release);
        // SAFETY: only this loop touches `future`, and not re-entrantly:
        // `block_on` refuses to nest.
        let slot = unsafe { &mut *task.future.get() };
        if let Some(future) = slot.as_mut() {
            let waker = Waker::from(task.clone());
            if future.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
                *slot = None;
            }
        }
    }
}
