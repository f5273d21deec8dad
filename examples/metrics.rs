//! Metrics: the runtime's counters and gauges (heap, tasks, interrupts),
//! one of the application's own, read from inside and printed by the
//! runner when `main` returns: `cargo run --example metrics -- --metrics`.
//! Naming `unikernel::metrics::at_exit` is what puts the exporter in the
//! image; `--metrics` switches it on for a run.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec::Vec;
use unikernel::metrics::{HEAP_PEAK, TASKS_SPAWNED};
use unikernel::prelude::*;

unikernel::metrics::counter!(static ROUNDS = "app_rounds_total", "Rounds of work the example did.");

#[unikernel(unikernel::metrics::at_exit)]
async fn main() -> Result<(), Error> {
    for round in 0..3u64 {
        let work: Vec<_> = (0..4).map(|i| spawn(async move { Vec::from([round * i; 512]) })).collect();
        for task in work {
            drop(task.await);
        }
        ROUNDS.inc();
    }
    unikernel::println!(
        "{} rounds, {} tasks spawned, heap peak {} B",
        ROUNDS.get(),
        TASKS_SPAWNED.get(),
        HEAP_PEAK.get()
    );
    Ok(())
}
