//! The hosted target, MirageOS's "unix" backend: the application runs as a
//! Linux process. Console is stdout, exit is the process exit, the command
//! line is the process arguments. Use it to debug with gdb or perf.
// Empty on bare metal, as unikernel-x86_64 is when hosted: the packaging
// check (xtask/src/package.rs) builds the facade's dependencies for both.
#![cfg_attr(target_os = "none", no_std)]
#![cfg(not(target_os = "none"))]
#![forbid(unsafe_code)]

use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};
use unikernel_core::runtime::App;
use unikernel_core::time::Clock;
use unikernel_core::{Error, Platform, exit};

struct Hosted;

impl Platform for Hosted {
    fn write(&self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        // A closed stdout (e.g. `| head`) must not abort the unikernel.
        let _ = out.write_all(bytes).and_then(|()| out.flush());
    }

    fn exit(&self, code: u8) -> ! {
        std::process::exit(i32::from(code))
    }

    fn free_memory(&self) -> Option<usize> {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    fn catch_panic(&self, f: fn() -> Result<(), Error>) -> Option<Result<(), Error>> {
        Some(panic::catch_unwind(f).unwrap_or_else(|_| Err(Error::msg("panicked"))))
    }

    fn restart(&self, f: fn() -> !) -> ! {
        f()
    }

    fn boot_cycles(&self) -> Option<u64> {
        None
    }

    fn notify(&self) {
        if let Some(executor) = EXECUTOR_THREAD.get() {
            executor.unpark();
        }
    }

    fn on_executor_thread(&self) -> bool {
        on_main_thread()
    }
}

unikernel_core::time::implement!(Clock for Hosted);

impl Clock for Hosted {
    fn now_ns() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        let start = *START.get_or_init(Instant::now);
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn unix_time_ns() -> u64 {
        let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Parks the executor's thread until the deadline or a `notify` from a
    /// waker on another thread; `unpark` before `park` is not lost.
    fn idle(deadline_ns: Option<u64>, still_idle: &dyn Fn() -> bool) {
        if !still_idle() {
            return;
        }
        match deadline_ns {
            Some(deadline) => std::thread::park_timeout(Duration::from_nanos(deadline.saturating_sub(Self::now_ns()))),
            None => std::thread::park(),
        }
    }
}

/// No devices: the host's sockets and files stand in for them.
mod no_devices {
    use unikernel_core::Error;
    use unikernel_core::bus::{Bus, FixedDevice, Line};

    struct NoDevices;

    unikernel_core::bus::implement!(Bus for NoDevices);

    impl Bus for NoDevices {
        fn fixed_devices(_: &mut dyn FnMut(FixedDevice)) {}

        fn enable_line(line: Line) -> Result<(), Error> {
            Err(Error::msg(format!("interrupt {line}: the hosted target has no device interrupts")))
        }
    }
}

/// The thread `start` runs the application on, for `notify`.
static EXECUTOR_THREAD: OnceLock<std::thread::Thread> = OnceLock::new();

/// The executor, and so every task and test, runs on the main thread.
fn on_main_thread() -> bool {
    std::thread::current().name() == Some("main")
}

/// Runs `app` as this process and exits with its status.
pub fn start(app: &'static App) -> ! {
    unikernel_core::platform::install(&Hosted);
    let _ = EXECUTOR_THREAD.set(std::thread::current());
    let cmdline = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    unikernel_core::cmdline::set(Box::leak(cmdline.into_boxed_str()));
    panic::set_hook(Box::new(|info| {
        // Tests run on the main thread; a panic elsewhere fails no test.
        if on_main_thread() {
            unikernel_core::test::panicked();
        }
        let message = info.payload_as_str().unwrap_or("Box<dyn Any>");
        unikernel_core::report_panic(info.location(), &message);
    }));
    // A panic in main unwinds to here: same status as bare metal.
    match panic::catch_unwind(AssertUnwindSafe(|| unikernel_core::runtime::start(app))) {
        Ok(never) => never,
        Err(_) => exit::exit(exit::PANIC),
    }
}
