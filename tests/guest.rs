//! Runtime tests that run inside the unikernel: `cargo test --test guest`
//! boots them in QEMU; with `--target x86_64-unknown-linux-gnu` they run
//! hosted. Arguments filter by name, as with libtest.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::{boxed::Box, string::String, vec::Vec};
use unikernel::Error;

unikernel::test_main!();

#[unikernel::test]
fn heap_allocates_and_frees() {
    let before = unikernel::heap::stats().used;
    allocate_and_drop();
    // Bare metal: everything allocated came back (hosted has no statistics).
    assert_eq!(unikernel::heap::stats().used, before);
}

fn allocate_and_drop() {
    let v: Vec<u64> = (0..10_000).collect();
    assert_eq!(v.iter().sum::<u64>(), 49_995_000);
    let s: String = ["uni", "kernel"].concat();
    assert_eq!(s, "unikernel");
    let b = Box::new([7u8; 4096]);
    assert!(b.iter().all(|&x| x == 7));
}

#[unikernel::test]
fn error_displays_its_message() -> Result<(), Error> {
    let e = Error::msg("disk on fire");
    assert_eq!(alloc::format!("{e}"), "disk on fire");
    Ok(())
}

/// A component's crate used as a library (its address parser here) is
/// linked, but the component is not named: it does not start, and the
/// image asks the VMM for none of its devices (`targets/runner/tests/elf.rs`).
#[unikernel::test]
fn a_component_crate_used_as_a_library_starts_nothing() {
    let parsed = unikernel_net::parse_cidr("10.0.2.15/24");
    assert_eq!(parsed, Some((core::net::Ipv4Addr::new(10, 0, 2, 15), 24)));
    assert!(!unikernel::component::linked("net"));
}

/// The heap gauges follow live allocations (bare metal: hosted uses the
/// host's allocator, which keeps no statistics).
#[cfg(target_os = "none")]
#[unikernel::test]
fn heap_metrics_follow_allocations() {
    use unikernel::metrics::{HEAP_PEAK, HEAP_USED};
    const SIZE: usize = 256 * 1024;
    let before = HEAP_USED.get();
    let block: Vec<u8> = alloc::vec![1; SIZE];
    let during = HEAP_USED.get();
    assert!(during >= before + SIZE as u64, "in use {before} -> {during}");
    assert!(HEAP_PEAK.get() >= during, "peak {} below in use {during}", HEAP_PEAK.get());
    drop(block);
    assert_eq!(HEAP_USED.get(), before);
    assert!(HEAP_PEAK.get() >= during, "the peak stays");
}

/// The task metrics count spawns and finished tasks; every metric renders.
#[unikernel::test]
async fn task_metrics_count_spawns_and_render() {
    use unikernel::metrics::{LIVE_TASKS, TASKS_SPAWNED};
    let (spawned, live) = (TASKS_SPAWNED.get(), LIVE_TASKS.get());
    let tasks: Vec<_> = (0..3).map(|i| unikernel::spawn(async move { i })).collect();
    assert_eq!(TASKS_SPAWNED.get(), spawned + 3);
    assert_eq!(LIVE_TASKS.get(), live + 3);
    for task in tasks {
        task.await;
    }
    assert_eq!(LIVE_TASKS.get(), live, "finished tasks are not live");
    let mut text = String::new();
    unikernel::metrics::render(&mut text).unwrap();
    assert!(text.contains(&alloc::format!("\nunikernel_tasks_spawned_total {}\n", spawned + 3)), "{text}");
    assert!(text.contains("# TYPE unikernel_heap_peak_bytes gauge\n"), "{text}");
}
