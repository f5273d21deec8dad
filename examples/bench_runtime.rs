//! Runtime figures for `cargo xtask bench`: task spawn+join cost and timer
//! wake-up latency, measured inside the guest (or the hosted process).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec::Vec;
use unikernel::prelude::*;

const TASKS: u64 = 10_000;
const ROUNDS: usize = 5;
const WAKES: usize = 200;

async fn spawn_join_ns() -> u64 {
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let handles: Vec<_> = (0..TASKS).map(|i| spawn(async move { i })).collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await;
        }
        assert_eq!(sum, TASKS * (TASKS - 1) / 2);
        rounds.push(start.elapsed().as_nanos() as u64 / TASKS);
    }
    rounds.sort_unstable();
    rounds[ROUNDS / 2]
}

/// How late `sleep(1 ms)` wakes, in microseconds: (median, p99).
async fn wake_latency_us() -> (u64, u64) {
    let period = Duration::from_millis(1);
    let mut late = Vec::with_capacity(WAKES);
    for _ in 0..WAKES {
        let start = Instant::now();
        sleep(period).await;
        late.push((start.elapsed() - period).as_micros() as u64);
    }
    late.sort_unstable();
    (late[WAKES / 2], late[WAKES * 99 / 100])
}

#[unikernel]
async fn main() {
    let spawn_join = spawn_join_ns().await;
    let (median, p99) = wake_latency_us().await;
    unikernel::println!("bench: spawn_join_ns={spawn_join} wake_median_us={median} wake_p99_us={p99}");
}
