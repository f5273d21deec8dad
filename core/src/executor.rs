//! The executor: single core, cooperative, no busy waiting.
//!
//! [`block_on`] polls the main future and every [`spawn`]ed task when woken.
//! With nothing to run it fires expired timers, and when still nothing is
//! ready it asks the platform to halt the CPU until the next timer deadline
//! or a device interrupt. Tasks need not be `Send`: they never leave the
//! executor's thread (Embassy and tokio's `LocalSet` work the same way).
//!
//! Task futures live in a slab that only the executor's thread touches;
//! a waker carries just the task's slot and generation, so it can be sent,
//! woken or dropped anywhere without touching the future.

use crate::platform;
use crate::time::Instant;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::cell::{RefCell, UnsafeCell};
use core::future::Future;
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};
use spin::Mutex;

/// A task's future on the heap, owned through a raw pointer. It is polled
/// where it lives while the slab may move (a task that spawns grows it),
/// and moving a `Box` would assert that the box is the only way to the
/// future, invalidating the pointer being polled.
struct BoxedTask(NonNull<dyn Future<Output = ()>>);

impl BoxedTask {
    fn new(future: impl Future<Output = ()> + 'static) -> Self {
        Self(NonNull::from(Box::leak(Box::new(future) as Box<dyn Future<Output = ()>>)))
    }
}

impl Drop for BoxedTask {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` in `new` and is
        // dropped once, here.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// What a waker knows of its task.
struct TaskRef {
    slot: usize,
    /// The executor generation the task belongs to (see [`reset`]).
    generation: u64,
    /// In the run queue already: wakes in a row enqueue it once.
    queued: AtomicBool,
}

impl Wake for TaskRef {
    fn wake(self: Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            crate::trace_event!(Wake, self.slot, 0);
            RUN_QUEUE.lock().push_back(self);
            platform::get().notify();
        }
    }
}

/// State reached only from the executor's thread: `spawn`, `block_on` and
/// `reset` check that they run there.
struct ExecutorOnly<T>(UnsafeCell<T>);

// SAFETY: every access goes through `with`, called only from functions that
// assert `on_executor_thread`; so the !Send futures inside never cross
// threads, and there is no concurrent access.
unsafe impl<T> Sync for ExecutorOnly<T> {}

impl<T> ExecutorOnly<T> {
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: see the Sync impl; `f` never re-enters `with` (task
        // futures are taken out of the slab before they are polled).
        f(unsafe { &mut *self.0.get() })
    }
}

/// Futures by slot; `None` for a free slot. A future stays in its slot
/// while it is polled, so a reset after a panic inside it still drops it.
static TASKS: ExecutorOnly<Vec<Option<BoxedTask>>> = ExecutorOnly(UnsafeCell::new(Vec::new()));
/// The future `block_on` runs, for the same reason.
static MAIN: ExecutorOnly<Option<BoxedTask>> = ExecutorOnly(UnsafeCell::new(None));
/// The future being polled: still set after a panic inside it.
static POLLING: ExecutorOnly<Option<Polled>> = ExecutorOnly(UnsafeCell::new(None));

/// Which future [`poll_in_place`] polls.
#[derive(Clone, Copy)]
enum Polled {
    Main,
    Task(usize),
}

impl Polled {
    /// Its slot; only the executor loop and `reset` call this.
    fn slot<R>(self, f: impl FnOnce(&mut Option<BoxedTask>) -> R) -> R {
        match self {
            Self::Main => MAIN.with(f),
            Self::Task(slot) => TASKS.with(|tasks| f(&mut tasks[slot])),
        }
    }
}
static FREE_SLOTS: ExecutorOnly<Vec<usize>> = ExecutorOnly(UnsafeCell::new(Vec::new()));
static RUN_QUEUE: Mutex<VecDeque<Arc<TaskRef>>> = Mutex::new(VecDeque::new());
static GENERATION: AtomicU64 = AtomicU64::new(0);
static MAIN_WOKEN: AtomicBool = AtomicBool::new(false);
static RUNNING: AtomicBool = AtomicBool::new(false);

crate::__declare_metric!(Gauge; pub static LIVE_TASKS = "unikernel_tasks", "Spawned tasks not finished.");
crate::__declare_metric!(Gauge; pub static TASKS_PEAK = "unikernel_tasks_peak", "Most spawned tasks unfinished at once since boot.");
crate::__declare_metric!(Counter; pub static TASKS_SPAWNED = "unikernel_tasks_spawned_total", "Tasks spawned since boot.");
crate::__declare_metric!(Counter; pub static POLLS = "unikernel_task_polls_total", "Polls of tasks and of the main future since boot.");

struct MainWaker;

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        MAIN_WOKEN.store(true, Ordering::Release);
        crate::trace_event!(Wake, crate::trace::MAIN, 0);
        platform::get().notify();
    }
}

fn assert_executor_thread(what: &str) {
    assert!(platform::get().on_executor_thread(), "{what} called outside the executor's thread");
}

/// Starts `future` as a task; its output comes from the [`JoinHandle`].
/// Dropping the handle detaches the task, which runs on.
///
/// # Panics
/// When called from another thread than the executor's (hosted target):
/// the future would move between threads although it need not be `Send`.
pub fn spawn<F: Future + 'static>(future: F) -> JoinHandle<F::Output> {
    assert_executor_thread("spawn");
    let state = Rc::new(RefCell::new(JoinState::Running(None)));
    let wrapped = Completion { state: state.clone(), future: Box::pin(future) };
    let slot = TASKS.with(|tasks| {
        let slot = FREE_SLOTS.with(Vec::pop).unwrap_or(tasks.len());
        if slot == tasks.len() {
            tasks.push(None);
        }
        tasks[slot] = Some(BoxedTask::new(wrapped));
        slot
    });
    crate::trace_event!(Spawn, slot, 0);
    TASKS_SPAWNED.inc();
    TASKS_PEAK.raise(LIVE_TASKS.add(1));
    let task = TaskRef { slot, generation: GENERATION.load(Ordering::Acquire), queued: AtomicBool::new(false) };
    Waker::from(Arc::new(task)).wake();
    JoinHandle { state }
}

enum JoinState<T> {
    /// Not finished; the waker of whoever awaits the handle.
    Running(Option<Waker>),
    Finished(T),
    /// The output was taken, or the task was dropped unfinished.
    Gone {
        cancelled: bool,
    },
}

/// A spawned future that hands its output to the [`JoinHandle`], or tells
/// it the task was dropped unfinished.
struct Completion<F: Future> {
    state: Rc<RefCell<JoinState<F::Output>>>,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for Completion<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Poll::Ready(output) = self.future.as_mut().poll(cx) else { return Poll::Pending };
        let previous = core::mem::replace(&mut *self.state.borrow_mut(), JoinState::Finished(output));
        if let JoinState::Running(Some(waiter)) = previous {
            waiter.wake();
        }
        Poll::Ready(())
    }
}

impl<F: Future> Drop for Completion<F> {
    fn drop(&mut self) {
        let mut state = self.state.borrow_mut();
        if let JoinState::Running(waiter) = &mut *state {
            let waiter = waiter.take();
            *state = JoinState::Gone { cancelled: true };
            drop(state);
            if let Some(waiter) = waiter {
                waiter.wake();
            }
        }
    }
}

/// Completes with the output of a [`spawn`]ed task.
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

impl<T> Future for JoinHandle<T> {
    type Output = T;

    /// # Panics
    /// When polled again after it completed, or when the task was dropped
    /// before finishing (an executor reset between tests).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.state.borrow_mut();
        match core::mem::replace(&mut *state, JoinState::Gone { cancelled: false }) {
            JoinState::Finished(output) => Poll::Ready(output),
            JoinState::Running(_) => {
                *state = JoinState::Running(Some(cx.waker().clone()));
                Poll::Pending
            }
            JoinState::Gone { cancelled: true } => panic!("the joined task was dropped before it finished"),
            JoinState::Gone { cancelled: false } => panic!("JoinHandle polled after it completed"),
        }
    }
}

/// Runs `future` to completion on this CPU, together with every spawned
/// task, halting the CPU whenever nothing is ready.
///
/// The future is `'static`, like a task's: it lives in the executor, not on
/// the caller's stack, so that a test reset after a panic (which abandons
/// the stack on bare metal) can still drop it and free what it held.
///
/// # Panics
/// When called from inside the executor (a task cannot block it), or from
/// another thread than the executor's.
pub fn block_on<F: Future + 'static>(future: F) -> F::Output {
    assert_executor_thread("block_on");
    assert!(!RUNNING.swap(true, Ordering::AcqRel), "block_on called inside the executor");
    let output = Rc::new(RefCell::new(None));
    let slot = output.clone();
    let future = BoxedTask::new(async move { *slot.borrow_mut() = Some(future.await) });
    MAIN.with(|main| *main = Some(future));
    let main_waker = Waker::from(Arc::new(MainWaker));
    let mut cx = Context::from_waker(&main_waker);
    MAIN_WOKEN.store(true, Ordering::Release);
    loop {
        if MAIN_WOKEN.swap(false, Ordering::AcqRel) && poll_in_place(Polled::Main, &mut cx) {
            MAIN.with(Option::take);
            RUNNING.store(false, Ordering::Release);
            return output.borrow_mut().take().expect("the main future finished");
        }
        run_ready_tasks();
        crate::timer::fire_expired(Instant::now().as_nanos());
        let idle = || RUN_QUEUE.lock().is_empty() && !MAIN_WOKEN.load(Ordering::Acquire);
        if idle() {
            crate::if_tracing! { crate::trace::flush(); }
            crate::trace_event!(IdleStart, 0, 0);
            crate::time::idle(crate::timer::next_deadline(), &idle);
            crate::trace_event!(IdleEnd, 0, 0);
        }
    }
}

/// Polls each task queued when this round started; tasks woken meanwhile
/// wait for the next round, so the main future is not starved.
fn run_ready_tasks() {
    let generation = GENERATION.load(Ordering::Acquire);
    let ready = RUN_QUEUE.lock().len();
    for _ in 0..ready {
        let Some(task) = RUN_QUEUE.lock().pop_front() else { break };
        task.queued.store(false, Ordering::Release);
        if task.generation != generation {
            continue; // from before a reset: its future is gone
        }
        let waker = Waker::from(task.clone());
        if poll_in_place(Polled::Task(task.slot), &mut Context::from_waker(&waker)) {
            let done = TASKS.with(|tasks| tasks[task.slot].take());
            drop(done); // outside the slab: a dropped future may spawn
            FREE_SLOTS.with(|free| free.push(task.slot));
            LIVE_TASKS.sub(1);
        }
    }
}

/// Polls a future where it lives (a free slot counts as pending); true
/// once it finished.
fn poll_in_place(which: Polled, cx: &mut Context<'_>) -> bool {
    let Some(future) = which.slot(|f| f.as_ref().map(|f| f.0)) else {
        return false;
    };
    POLLING.with(|p| *p = Some(which));
    let id = match which {
        Polled::Main => crate::trace::MAIN,
        Polled::Task(slot) => slot as u32,
    };
    crate::trace_event!(PollStart, id, 0);
    POLLS.inc();
    // SAFETY: the future lives in a heap allocation owned by a slot of
    // TASKS or MAIN, which is not freed while it is polled (only the
    // executor loop, on this thread and not re-entered, frees slots, after
    // the poll) and never moved (a spawn may move the slab's pointers, not
    // what they point to); nothing else reaches it meanwhile.
    let done = unsafe { Pin::new_unchecked(&mut *future.as_ptr()) }.poll(cx).is_ready();
    crate::trace_event!(PollEnd, id, done);
    POLLING.with(|p| *p = None);
    done
}

/// Drops every task, the main future and every timer, and leaves the
/// executor idle: the state a test starts from, whatever the previous test
/// (perhaps one that panicked out of `block_on`) left behind. Wakers still held elsewhere (a driver's
/// `AtomicWaker`) belong to the old generation and are ignored.
pub(crate) fn reset() {
    assert_executor_thread("reset");
    GENERATION.fetch_add(1, Ordering::AcqRel);
    // Dropped outside every lock: a dropped future may wake or sleep.
    crate::timer::clear();
    let queued = core::mem::take(&mut *RUN_QUEUE.lock());
    drop(queued);
    // A future that panicked mid-poll is leaked, not dropped: without
    // unwinding, its state still names the last await point although the
    // code after it ran, so its drop glue could drop moved-out values twice.
    if let Some(which) = POLLING.with(Option::take) {
        core::mem::forget(which.slot(Option::take));
    }
    let tasks = TASKS.with(core::mem::take);
    let main = MAIN.with(Option::take);
    FREE_SLOTS.with(Vec::clear);
    LIVE_TASKS.set(0);
    drop(tasks);
    drop(main);
    RUN_QUEUE.lock().clear();
    crate::timer::clear();
    MAIN_WOKEN.store(false, Ordering::Release);
    RUNNING.store(false, Ordering::Release);
}
