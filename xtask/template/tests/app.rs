//! `cargo test` boots these tests in QEMU (`--target
//! x86_64-unknown-linux-gnu` runs them as a Linux process). Words after
//! `--` filter by name: `cargo test -- greeting`.
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;

unikernel::test_main!();

#[unikernel::test]
fn greeting_names_the_app() {
    assert_eq!({{crate}}::greeting("app"), "Hello from app!");
}

#[unikernel::test]
async fn tasks_and_timers_run() {
    let started = Instant::now();
    let task = spawn(async {
        sleep(Duration::from_millis(5)).await;
        42
    });
    assert_eq!(task.await, 42);
    assert!(started.elapsed() >= Duration::from_millis(5));
}
