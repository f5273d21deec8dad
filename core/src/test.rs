//! In-guest tests on stable Rust: `#[unikernel::test]` adds a [`Test`] to
//! [`TESTS`]; `unikernel::test_main!()` makes an image whose `main` runs them
//! and prints libtest-like lines. Command-line words without `=` filter tests
//! by substring, as with `cargo test NAME`.

use crate::{Error, cmdline, platform, print, println};
use linkme::distributed_slice;
use spin::Mutex;

/// A test function registered by `#[unikernel::test]`.
#[derive(Debug)]
pub struct Test {
    /// `module::function`.
    pub name: &'static str,
    /// Runs the test; `Err` fails it.
    pub run: fn() -> Result<(), Error>,
}

/// Every test linked into the image.
#[distributed_slice]
pub static TESTS: [Test];

struct Progress {
    next: usize,
    passed: usize,
    failed: usize,
    filtered: usize,
    /// A `test NAME ... ` line waits for its verdict.
    line_open: bool,
}

/// Test indices in name order, as libtest runs them.
static ORDER: spin::Once<alloc::vec::Vec<usize>> = spin::Once::new();

fn order() -> &'static [usize] {
    ORDER.call_once(|| {
        let mut order: alloc::vec::Vec<usize> = (0..TESTS.len()).collect();
        order.sort_unstable_by_key(|&i| TESTS[i].name);
        order
    })
}

static PROGRESS: Mutex<Progress> =
    Mutex::new(Progress { next: 0, passed: 0, failed: 0, filtered: 0, line_open: false });

fn selected(test: &Test) -> bool {
    let mut filters = cmdline::args().filter(|w| !w.contains('=')).peekable();
    filters.peek().is_none() || filters.any(|f| display_name(test.name).contains(f))
}

/// `crate::module::name` without the crate, as libtest shows it.
fn display_name(name: &str) -> &str {
    name.split_once("::").map_or(name, |(_, rest)| rest)
}

/// The `main` of a test image.
pub fn main() -> Result<(), Error> {
    RUNNER.call_once(|| Runner { close_failed_line, resume });
    let count = TESTS.iter().filter(|t| selected(t)).count();
    println!("\nrunning {count} test{}", if count == 1 { "" } else { "s" });
    run_remaining()
}

/// Runs the tests not yet run, then prints the summary.
fn run_remaining() -> Result<(), Error> {
    loop {
        let index = {
            let mut p = PROGRESS.lock();
            if p.next == TESTS.len() {
                break;
            }
            p.next += 1;
            p.next - 1
        };
        let test = &TESTS[order()[index]];
        if !selected(test) {
            PROGRESS.lock().filtered += 1;
            continue;
        }
        // Before the reset: dropping the last test's futures could take
        // such a lock and hang.
        let held = crate::sync::blocking::held();
        if held > 0 {
            let left = order()[index..].iter().filter(|&&i| selected(&TESTS[i])).count();
            println!(
                "\na panic left {held} lock(s) held on a target that cannot unwind: the {left} remaining test(s) cannot run safely"
            );
            PROGRESS.lock().failed += left;
            break;
        }
        crate::executor::reset();
        print!("test {} ... ", display_name(test.name));
        PROGRESS.lock().line_open = true;
        let outcome = platform::get().catch_panic(test.run).unwrap_or_else(|| (test.run)());
        // A closed line means a panic already failed the test (see
        // `close_failed_line`), even if the test caught it itself: without
        // unwinding on bare metal a panic always ends a test, and the hosted
        // target keeps the same rule. No lock is held while printing.
        let line_open = core::mem::replace(&mut PROGRESS.lock().line_open, false);
        match outcome {
            _ if !line_open => {}
            Ok(()) => {
                PROGRESS.lock().passed += 1;
                println!("ok");
            }
            Err(e) => {
                PROGRESS.lock().failed += 1;
                println!("FAILED\n    error: {e}");
            }
        }
    }
    let (passed, failed, filtered) = {
        let p = PROGRESS.lock();
        (p.passed, p.failed, p.filtered)
    };
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; 0 ignored; 0 measured; {filtered} filtered out\n{passed} passed, {failed} failed"
    );
    if failed == 0 { Ok(()) } else { Err(Error::msg(alloc::format!("{failed} test(s) failed"))) }
}

/// The test runner's part in panic handling. Reached through this pointer,
/// set only by a test image's `main`, so that other images do not link the
/// runner just because the panic handler mentions it.
struct Runner {
    close_failed_line: fn() -> bool,
    resume: fn() -> !,
}

static RUNNER: spin::Once<Runner> = spin::Once::new();

/// Called by the panic path before it prints the panic. When a test was
/// running, closes its `test NAME ... ` line with `FAILED` and returns how
/// to go on with the remaining tests (for targets that cannot unwind).
pub fn panicked() -> Option<fn() -> !> {
    let runner = RUNNER.get()?;
    (runner.close_failed_line)().then_some(runner.resume)
}

fn close_failed_line() -> bool {
    // The runner never holds PROGRESS while test code or printing runs, so
    // a panic cannot leave it locked.
    let was_open = {
        let mut p = PROGRESS.lock();
        let open = core::mem::replace(&mut p.line_open, false);
        p.failed += usize::from(open);
        open
    };
    if was_open {
        println!("FAILED");
    }
    was_open
}

/// Goes on with the next test after a panic on a target that cannot unwind:
/// the platform calls this on a fresh stack.
fn resume() -> ! {
    crate::runtime::finish(run_remaining())
}
