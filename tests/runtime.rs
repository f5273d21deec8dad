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
    }
}

#[unikernel::test]
async fn concurrent_sleepers_wake_in_deadline_order() {
    let woke = Rc::new(RefCell::new(Vec::new()));
    let base = Rc::new(core::cell::Cell::new(None::<Instant>));
    // Spawned in a scrambled order. Deadlines are 5 ms apart by rank,
    // counted from a base fixed once all are spawned, so that however slow
    // spawning and first polls are, no deadline passes before its sleep.
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
    base.set(Some(Instant::now() + Duration::from_millis(50)));
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
    let fast = timeout(Duration::from_secs(10), async { 7 }).await;
    assert_eq!(fast, Ok(7));
    assert_eq!(timer::pending(), 0);
}

#[unikernel::test]
async fn interval_ticks_on_its_schedule() {
    let period = Duration::from_millis(5);
    let start = Instant::now();
    let mut ticks = interval(period);
    let mut previous = start;
    for _ in 0..5 {
        let at = ticks.tick().await;
        assert!(at >= previous + period, "tick at {at:?} is less than a period after {previous:?}");
        assert!(Instant::now() >= at);
        previous = at;
    }
    assert!(start.elapsed() >= 5 * period);
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

#[cfg(target_os = "none")]
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
        // Then a storm at 8192 Hz for 100 ms while the executor sleeps.
        let before = TICKS.load(Ordering::Relaxed);
        sleep(Duration::from_millis(100)).await;
        set_periodic(false);
        let storm = TICKS.load(Ordering::Relaxed) - before;
        unikernel::println!("    ({storm} RTC interrupts in 100 ms)");
        assert!(storm >= 10, "only {storm} interrupts arrived");
        Ok(())
    }
}
