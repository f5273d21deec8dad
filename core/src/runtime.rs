//! From a booted machine to `main` and back out.

use crate::{Error, cmdline, exit, println};
use log::LevelFilter;

/// The smallest heap an application is started with, in bytes: the targets
/// refuse to boot with less, and the macro refuses a smaller `heap_size`.
/// Measured with release images: `hello`, `random` and `timers` run in
/// 4 KiB of heap; the servers need 350–500 KiB and say so with an
/// allocation failure. 16× the former keeps a 2 MiB guest possible and
/// refuses a guest that could not even begin.
pub const MIN_HEAP: usize = 64 * 1024;

/// Settings the `#[unikernel]` macro fixes at compile time.
#[derive(Debug)]
pub struct Config {
    /// Log level unless the command line says `log=LEVEL`.
    pub log_level: LevelFilter,
    /// Upper bound for the heap in bytes; `None` takes all free RAM.
    pub heap_size: Option<usize>,
    /// Size of the stack `main` runs on, in bytes.
    pub stack_size: usize,
    /// Port forwards the application asks for unless the user gives some
    /// (also in the image's records, for the runner); `None` when it
    /// declares nothing, `Some(&[])` for none at all.
    pub forwards: Option<&'static [crate::forward::Forward]>,
}

/// An application: what the `#[unikernel]` macro generates.
#[derive(Debug)]
pub struct App {
    /// Settings from the `#[unikernel(...)]` arguments.
    pub config: Config,
    /// Starts the components: [`crate::component::init_all`], or, in an image
    /// without any, [`no_components`], so that the registry's ordering code
    /// is not linked into it.
    pub components: fn() -> Result<(), Error>,
    /// Takes the component handles and calls the user's `main`.
    pub main: fn() -> Result<(), Error>,
}

unsafe extern "Rust" {
    /// Emitted by `#[unikernel]` in the application crate.
    static __UNIKERNEL_APP: App;
}

/// The application `#[unikernel]` defined, for a bare-metal target's boot
/// code (linked only into images whose target calls it).
pub fn app() -> &'static App {
    // SAFETY: the macro defines it as an immutable static of type `App`.
    unsafe { &__UNIKERNEL_APP }
}

/// Ends a boot that cannot reach `main`, saying why.
pub fn boot_failed(reason: &dyn core::fmt::Display) -> ! {
    println!("boot failed: {reason}");
    exit::exit(exit::FAILURE)
}

/// [`App::components`] of an image that names no component.
pub fn no_components() -> Result<(), Error> {
    Ok(())
}

/// Runs the application on a booted machine and exits with its status.
pub fn start(app: &App) -> ! {
    let level = cmdline::value("log").and_then(|l| l.parse().ok()).unwrap_or(app.config.log_level);
    crate::logger::init(level);
    crate::forward::declare(app.config.forwards);
    let result = (app.components)().and_then(|()| {
        // Read before logging: the figure is the cost of booting, not of logging it.
        let boot_cycles = crate::platform::get().boot_cycles();
        // `{:?}` would link `str`'s Debug escaping and its Unicode tables
        // (about 8 KiB) into every image for this one debug line.
        log::debug!("cmdline: \"{}\"", cmdline::get());
        if let Some(cycles) = boot_cycles {
            log::debug!("boot: {cycles} TSC cycles from first instruction to main");
        }
        (app.main)()
    });
    finish(result)
}

/// Reports `result` and exits: 0 for `Ok`, [`exit::FAILURE`] for `Err`.
pub fn finish(result: Result<(), Error>) -> ! {
    crate::metrics::before_exit();
    match result {
        Ok(()) => exit::exit(exit::SUCCESS),
        Err(e) => {
            println!("Error: {e}");
            exit::exit(exit::FAILURE)
        }
    }
}

/// What `main` may return: `()` or `Result<(), E>` for any displayable `E`.
pub trait Termination {
    /// `main`'s return value as the runtime's result; `Err` fails the image.
    fn into_result(self) -> Result<(), Error>;
}

impl Termination for () {
    fn into_result(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<E: core::fmt::Display> Termination for Result<(), E> {
    fn into_result(self) -> Result<(), Error> {
        self.map_err(|e| Error::msg(alloc::format!("{e}")))
    }
}
