//! The async runtime inside the unikernel: timers, tasks, clocks and
//! interrupts. `cargo test --test runtime` boots it in QEMU; with
//! `--target x86_64-unknown-linux-gnu` it runs hosted (the interrupt tests
//! are bare-metal only: a Linux process has no interrupt vectors).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use unikernel::prelude::*;
use unikernel::{interval, timer};

unikernel::test_main!();

#[unikernel::test]
async fn sleep_never_wakes_early() {
    for ms in [1, 3, 10, 25] {
        let d = Duration::from_millis(ms);
        let start = Instant::now();
        sleep(d).await;
        let took = start.elapsed();
        assert!(took >= d, "sleep({d:?}) woke after {took:?}");
        // Generous: emulation and a busy host add latency, but not seconds.
        assert!(took < d + Duration::from_secs(1), "sleep({d:?}) woke only after {took:?}");
    }
}

#[unikernel::test]
async fn concurrent_sleepers_wake_in_deadline_order() {
    let woke = Rc::new(RefCell::new(Vec::new()));
    let base = Rc::new(core::cell::Cell::new(None::<Instant>));
    // Spawned in a scrambled order. Deadlines are 5 ms apart by rank,
    // counted from a base fixed once all are spawned and half a second
    // ahead, so no deadline passes before the tasks' first polls.
    let ranks: Vec<u64> = (0..40).map(|i| (i * 17) % 40).collect();
    let tasks: Vec<_> = ranks
        .iter()
        .map(|&rank| {
            let (woke, base) = (woke.clone(), base.clone());
            spawn(async move {
                let at = base.get().expect("set before the first poll") + Duration::from_millis(5 * rank);
                unikernel::sleep_until(at).await;
                woke.borrow_mut().push(rank);
            })
        })
        .collect();
    base.set(Some(Instant::now() + Duration::from_millis(500)));
    for task in tasks {
        task.await;
    }
    let woke = woke.borrow();
    assert_eq!(*woke, (0..40).collect::<Vec<u64>>());
}

#[unikernel::test]
async fn timeout_cancels_the_slow_future_and_keeps_the_fast_one() {
    let start = Instant::now();
    let slow = timeout(Duration::from_millis(20), sleep(Duration::from_secs(10))).await;
    assert_eq!(slow, Err(unikernel::Elapsed));
    assert!(start.elapsed() < Duration::from_secs(5), "the timeout fired late: {:?}", start.elapsed());
    // The cancelled sleep's timer is gone, not left to fire later.
    assert_eq!(timer::pending(), 0);
    // The fast future waits once, so the timeout's own sleep is registered
    // before it completes: completing must cancel that timer too.
    let mut waited = false;
    let fast = timeout(
        Duration::from_secs(10),
        core::future::poll_fn(|cx| {
            if waited {
                return core::task::Poll::Ready(7);
            }
            waited = true;
            cx.waker().wake_by_ref();
            core::task::Poll::Pending
        }),
    )
    .await;
    assert_eq!(fast, Ok(7));
    assert_eq!(timer::pending(), 0);
}

#[unikernel::test]
async fn interval_ticks_on_its_schedule_and_skips_missed_ticks() {
    let period = Duration::from_millis(5);
    let mut ticks = interval(period);
    let first = ticks.tick().await;
    // On time: exactly one period apart.
    for k in 1..4u32 {
        assert_eq!(ticks.tick().await, first + period * k);
        assert!(Instant::now() >= first + period * k);
    }
    // Late by several periods: the late tick comes at once, and the next
    // is scheduled a period after it, not in a burst of catch-up ticks.
    let late_from = Instant::now();
    while late_from.elapsed() < period * 4 {}
    let scheduled = ticks.tick().await;
    assert_eq!(scheduled, first + period * 4);
    let next = ticks.tick().await;
    // Catching up would schedule it at first + 5 periods, before `late_from`
    // + 2 periods; the skip rule puts it a period after the late tick.
    assert!(next >= late_from + period * 5, "a catch-up tick: {next:?}, late from {late_from:?}");
}

#[unikernel::test]
async fn join_and_select_combinators_work() {
    use unikernel::future::{Either, join, select};
    let (a, b) = join(async { 1 }, async {
        sleep(Duration::from_millis(2)).await;
        2
    })
    .await;
    assert_eq!((a, b), (1, 2));
    let fast = core::pin::pin!(sleep(Duration::from_millis(1)));
    let slow = core::pin::pin!(sleep(Duration::from_secs(10)));
    assert!(matches!(select(fast, slow).await, Either::Left(_)));
}

async fn many_tasks(n: u64) -> u64 {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            spawn(async move {
                sleep(Duration::from_millis(i % 7)).await;
                i
            })
        })
        .collect();
    let mut sum = 0;
    for h in handles {
        sum += h.await;
    }
    sum
}

#[unikernel::test]
async fn thousands_of_tasks_complete_and_memory_returns_to_baseline() {
    const N: u64 = 5000;
    // A first round grows the run queue to its working size; after that,
    // a second round must give back every byte it takes.
    assert_eq!(many_tasks(N).await, N * (N - 1) / 2);
    let baseline = unikernel::heap::stats().used;
    assert_eq!(many_tasks(N).await, N * (N - 1) / 2);
    let after = unikernel::heap::stats().used;
    #[cfg(target_os = "none")]
    assert_eq!(after, baseline, "heap use grew by {} bytes", after as i64 - baseline as i64);
    #[cfg(not(target_os = "none"))]
    let _ = (baseline, after); // hosted: the heap statistics are bare-metal only
}

mod sync {
    use super::*;
    use unikernel::sync::{Channel, Mutex, Signal};

    #[unikernel::test]
    async fn a_mutex_held_across_await_serves_tasks_in_arrival_order() {
        let log = Rc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..5)
            .map(|i| {
                let log = log.clone();
                spawn(async move {
                    let mut entries = log.lock().await;
                    entries.push(i);
                    sleep(Duration::from_millis(2)).await; // the others wait, queued
                    entries.push(i);
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
        assert_eq!(*log.lock().await, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    }

    // In a `static`: the channel is `Sync` through the target's critical section.
    static NUMBERS: Channel<u32, 4> = Channel::new();

    #[unikernel::test]
    async fn a_channel_carries_values_in_order_and_makes_the_sender_wait_when_full() {
        let producer = spawn(async {
            for n in 0..100 {
                NUMBERS.send(n).await;
            }
        });
        sleep(Duration::from_millis(5)).await;
        assert!(NUMBERS.is_full(), "the producer filled the channel and waits");
        let mut received = Vec::new();
        for _ in 0..100 {
            received.push(NUMBERS.receive().await);
        }
        producer.await;
        assert_eq!(received, (0..100).collect::<Vec<_>>());
        assert!(NUMBERS.is_empty());
    }

    #[unikernel::test]
    async fn a_signal_wakes_the_waiting_task_with_the_latest_value() {
        let signal = Rc::new(Signal::new());
        let waiter = {
            let signal = signal.clone();
            spawn(async move { signal.wait().await })
        };
        sleep(Duration::from_millis(2)).await;
        signal.signal(1u32);
        signal.signal(2); // overwrites: a signal keeps only the latest
        assert_eq!(timeout(Duration::from_secs(5), waiter).await, Ok(2));
        assert!(!signal.signaled(), "taken by the waiter");
    }
}

#[unikernel::test]
fn wall_clock_is_plausible() {
    let now = SystemTime::now();
    let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    // Later than 2020-01-01 and earlier than 2100-01-01.
    assert!((1_577_836_800..4_102_444_800).contains(&since_epoch.as_secs()), "{now}");
    let text = alloc::format!("{now}");
    assert_eq!(text.len(), 24, "{text}");
    assert!(text.ends_with('Z') && text.as_bytes()[10] == b'T', "{text}");
}

// x86_64 only: the PC's CMOS RTC is the device whose interrupt is driven;
// on aarch64 the virtio devices' interrupts are exercised by the net and
// storage tests.
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
mod interrupts {
    use super::*;
    use core::sync::atomic::{AtomicU32, Ordering};
    use unikernel::future::AtomicWaker;
    use x86_64::instructions::port::Port;

    #[unikernel::test]
    fn stray_vectors_are_counted_not_fatal() {
        // Vectors 32–255 exist once the interrupt controllers are up, which
        // the first clock reading (or executor idle) does.
        let _ = Instant::now();
        let before = unikernel::interrupt::unexpected();
        // SAFETY: software interrupts on vectors with present gates; the
        // runtime counts them and returns.
        unsafe {
            core::arch::asm!("int 0x99");
            core::arch::asm!("int 0xff");
        }
        assert_eq!(unikernel::interrupt::unexpected(), before + 2);
    }

    const RTC_IRQ: u8 = 8;
    static TICKS: AtomicU32 = AtomicU32::new(0);
    static WAKER: AtomicWaker = AtomicWaker::new();

    fn cmos(register: u8) -> (Port<u8>, Port<u8>) {
        let mut index = Port::new(0x70);
        // SAFETY: selects a CMOS register; NMIs stay enabled.
        unsafe { index.write(register) };
        (index, Port::new(0x71))
    }

    /// The device interrupt handler: acknowledge (read register C), count, wake.
    fn rtc_interrupt() {
        // SAFETY: reading register C acknowledges the RTC interrupt.
        unsafe { cmos(0x0c).1.read() };
        TICKS.fetch_add(1, Ordering::Relaxed);
        WAKER.wake();
    }

    fn set_periodic(enabled: bool) {
        // SAFETY: register A rate 3 = 8192 Hz; register B bit 6 = periodic
        // interrupt enable. Only this test touches them.
        unsafe {
            let (_, mut data) = cmos(0x0a);
            let a = data.read();
            cmos(0x0a).1.write((a & 0xf0) | 3);
            let b = cmos(0x0b).1.read();
            let b = if enabled { b | 0x40 } else { b & !0x40 };
            cmos(0x0b).1.write(b);
            cmos(0x0c).1.read();
        }
    }

    #[unikernel::test]
    async fn device_interrupt_storm_reaches_its_handler_and_wakes_a_task() -> Result<(), Error> {
        unikernel::interrupt::register(RTC_IRQ, rtc_interrupt)?;
        set_periodic(true);
        // A task woken only by the interrupt handler: no timer involved.
        let first = core::future::poll_fn(|cx| {
            WAKER.register(cx.waker());
            if TICKS.load(Ordering::Relaxed) > 0 { core::task::Poll::Ready(()) } else { core::task::Poll::Pending }
        });
        timeout(Duration::from_secs(5), first).await?;
        // Then a storm at 8192 Hz while the executor sleeps: at least ten
        // more must arrive (counted, not timed: a descheduled QEMU may
        // coalesce ticks), and the figure for 100 ms is reported.
        let before = TICKS.load(Ordering::Relaxed);
        sleep(Duration::from_millis(100)).await;
        let in_100ms = TICKS.load(Ordering::Relaxed) - before;
        let ten_more = core::future::poll_fn(|cx| {
            WAKER.register(cx.waker());
            if TICKS.load(Ordering::Relaxed) >= before + 10 {
                core::task::Poll::Ready(())
            } else {
                core::task::Poll::Pending
            }
        });
        timeout(Duration::from_secs(5), ten_more).await?;
        set_periodic(false);
        unikernel::println!("    ({in_100ms} RTC interrupts in 100 ms)");
        Ok(())
    }
}

#[cfg(not(target_os = "none"))]
mod host_threads {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[unikernel::test]
    async fn a_waker_fired_from_another_thread_ends_the_idle_wait() {
        // No timer is pending: only the other thread's wake can resume us.
        let slot: Arc<Mutex<(bool, Option<core::task::Waker>)>> = Arc::default();
        let remote = slot.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let mut guard = remote.lock().unwrap();
            guard.0 = true;
            if let Some(waker) = guard.1.take() {
                waker.wake();
            }
        });
        core::future::poll_fn(|cx| {
            let mut guard = slot.lock().unwrap();
            if guard.0 {
                return core::task::Poll::Ready(());
            }
            guard.1 = Some(cx.waker().clone());
            core::task::Poll::Pending
        })
        .await;
        thread.join().unwrap();
    }

    #[unikernel::test]
    fn spawning_from_another_thread_is_refused() {
        let result = std::thread::spawn(|| std::panic::catch_unwind(|| drop(spawn(async {})))).join().unwrap();
        assert!(result.is_err(), "spawn off the executor's thread must panic");
    }
}
