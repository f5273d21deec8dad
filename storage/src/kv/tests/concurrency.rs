//! Tasks sharing one store: `update` against `get` + `put`, and the
//! store's lock (first come, first served; cancel-safe). The executor here
//! polls a task only when it was woken, so a lost wake-up is a stall.

use super::*;
use core::pin::Pin;
use std::sync::atomic::AtomicBool;

/// Completes on the second poll, having woken its task in between.
pub(super) fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    core::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Pending until its task is woken by something else.
fn wait_for_wake() -> impl Future<Output = ()> {
    let mut waited = false;
    core::future::poll_fn(move |_| if core::mem::replace(&mut waited, true) { Poll::Ready(()) } else { Poll::Pending })
}

struct Woken(AtomicBool);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

type Task<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Runs `tasks` in rounds: every task in order first, then only the woken
/// ones. Panics when tasks remain and none is woken: a stranded waiter.
fn run_tasks(tasks: Vec<Task<'_>>) {
    let mut tasks: Vec<_> = tasks.into_iter().map(|t| (Some(t), Arc::new(Woken(AtomicBool::new(true))))).collect();
    while tasks.iter().any(|(task, _)| task.is_some()) {
        let mut polled = false;
        for (task, woken) in &mut tasks {
            let Some(future) = task else { continue };
            if !woken.0.swap(false, Ordering::SeqCst) {
                continue;
            }
            polled = true;
            let waker = Waker::from(woken.clone());
            if future.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
                *task = None;
            }
        }
        assert!(polled, "tasks remain but none was woken: a waiter was stranded");
    }
}

const TASKS: u64 = 20;

/// A counter's value: 8 bytes little-endian, absent = 0.
fn count(value: Option<&[u8]>) -> u64 {
    value.map_or(0, |v| u64::from_le_bytes(v.try_into().expect("8 bytes")))
}

/// The counter, read with the disk fast again.
fn counter(disk: &MemDisk, store: &Store<MemDisk>) -> u64 {
    disk.set_slow(false);
    count(get(store, "n").as_deref())
}

#[test]
fn concurrent_updates_count_exactly_and_in_arrival_order() {
    let disk = MemDisk::new(256);
    let store = open(&disk);
    disk.set_slow(true);
    let seen = RefCell::new(Vec::new());
    let tasks = (0..TASKS)
        .map(|_| -> Task<'_> {
            Box::pin(async {
                let new = store.update(b"n", |old| Some((count(old) + 1).to_le_bytes().to_vec())).await.unwrap();
                seen.borrow_mut().push(count(new.as_deref()));
            })
        })
        .collect();
    run_tasks(tasks);
    assert_eq!(counter(&disk, &store), TASKS);
    // First come, first served: the tasks got the lock in the order they
    // asked for it, each seeing every earlier increment.
    assert_eq!(seen.into_inner(), (1..=TASKS).collect::<Vec<_>>());
}

/// Why `update` exists: every task reads the counter before any writes it.
#[test]
fn concurrent_get_then_put_loses_counts() {
    let disk = MemDisk::new(256);
    let store = open(&disk);
    disk.set_slow(true);
    let tasks = (0..TASKS)
        .map(|_| -> Task<'_> {
            Box::pin(async {
                let old = store.get(b"n").await.unwrap();
                store.put(b"n", &(count(old.as_deref()) + 1).to_le_bytes()).await.unwrap();
            })
        })
        .collect();
    run_tasks(tasks);
    assert_eq!(counter(&disk, &store), 1, "all but one increment lost");
}

#[test]
fn update_deletes_on_none_and_skips_writing_an_unchanged_value() {
    let disk = MemDisk::new(256);
    let store = open(&disk);
    assert_eq!(run(store.update(b"k", |old| old.map(<[u8]>::to_vec))).unwrap(), None);
    assert_eq!(run(store.update(b"k", |_| Some(b"v".to_vec()))).unwrap().as_deref(), Some(&b"v"[..]));
    let writes = disk.0.writes.get();
    assert_eq!(run(store.update(b"k", |old| old.map(<[u8]>::to_vec))).unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(disk.0.writes.get(), writes, "an unchanged value is not written again");
    assert_eq!(run(store.update(b"k", |_| None)).unwrap(), None);
    assert_eq!(get(&open(&disk), "k"), None);
    assert_eq!(run(store.update(b"", |_| None)), Err(StoreError::BadKey));
}

/// F15, through the store: a write dropped while it waits for the lock (a
/// `timeout` around `put`) must not strand the writes queued behind it,
/// whether it is dropped before the holder lets go or after it was woken.
#[test]
fn a_write_dropped_while_it_waits_does_not_strand_the_next() {
    for woken_first in [false, true] {
        let disk = MemDisk::new(256);
        let store = open(&disk);
        disk.set_slow(true);
        let first: Task<'_> = Box::pin(async { store.put(b"a", b"1").await.unwrap() });
        let dropped: Task<'_> = Box::pin(async {
            let mut put = Box::pin(store.put(b"b", b"2"));
            assert!(poll_once(put.as_mut()).await.is_pending(), "queued behind the first");
            if woken_first {
                // The lock's hand-off is the only wake-up this task gets.
                wait_for_wake().await;
            }
        });
        let last: Task<'_> = Box::pin(async { store.put(b"c", b"3").await.unwrap() });
        run_tasks(vec![first, dropped, last]);
        disk.set_slow(false);
        assert_eq!(all_keys(&store), vec![b"a".to_vec(), b"c".to_vec()]);
    }
}

/// Polls `future` once, in the calling task.
async fn poll_once<F: Future + ?Sized>(mut future: Pin<&mut F>) -> Poll<F::Output> {
    core::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
}

struct CountWaker(AtomicUsize);

impl Wake for CountWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The store's lock on its own: a waiter dropped while queued must not
/// swallow the wake-up, whether it is dropped before the holder lets go or
/// after it was woken.
#[test]
fn a_cancelled_waiter_passes_the_lock_on() {
    for woken_first in [false, true] {
        let lock = Mutex::new(());
        let counter = Arc::new(CountWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let first = run(lock.lock());
        let mut second = Box::pin(lock.lock());
        let mut third = Box::pin(lock.lock());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert!(third.as_mut().poll(&mut cx).is_pending());
        if woken_first {
            drop(first);
            drop(second);
        } else {
            drop(second);
            drop(first);
        }
        assert!(counter.0.load(Ordering::Relaxed) >= 1, "the third was woken");
        let Poll::Ready(_guard) = third.as_mut().poll(&mut cx) else { panic!("the third gets the lock") };
        assert!(Box::pin(lock.lock()).as_mut().poll(&mut cx).is_pending(), "held by the third");
    }
}

/// The store's lock on its own: woken waiters are served in arrival order,
/// and a newcomer does not take the lock ahead of a woken waiter.
#[test]
fn the_lock_is_first_come_first_served() {
    let lock = Mutex::new(());
    let mut cx = Context::from_waker(Waker::noop());
    let holder = run(lock.lock());
    let mut waiters: Vec<_> = (0..4).map(|_| Box::pin(lock.lock())).collect();
    for waiter in &mut waiters {
        assert!(waiter.as_mut().poll(&mut cx).is_pending());
    }
    drop(holder);
    assert!(lock.try_lock().is_none(), "handed to the first waiter, not free for a newcomer");
    for turn in 0..waiters.len() {
        // Later waiters polled first: only the first in line may get it.
        // Its guard is dropped at once, handing the lock on.
        let ready: Vec<_> = waiters.iter_mut().rev().map(|w| w.as_mut().poll(&mut cx).is_ready()).collect();
        let mut expected = vec![false; ready.len()];
        expected[ready.len() - 1] = true;
        assert_eq!(ready, expected, "turn {turn}");
        drop(waiters.remove(0));
    }
}
