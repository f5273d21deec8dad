//! The boot-independent half of the runtime.
//!
//! A target crate (bare-metal x86_64 or hosted Linux) brings the machine up,
//! installs a [`Platform`] and calls [`runtime::start`]; everything from there
//! on — components, console, log, heap accounting, tests, exit codes — lives
//! here and is the same on every target.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bus;
pub mod channel;
pub mod cmdline;
pub mod component;
pub mod console;
pub mod crash;
mod error;
pub mod executor;
pub mod exit;
pub mod forward;
pub mod heap;
pub mod interrupt;
mod logger;
pub mod metrics;
#[cfg(target_os = "none")]
mod panic;
pub mod platform;
pub mod restore;
pub mod runtime;
pub mod sync;
pub mod test;
pub mod time;
pub mod timer;
pub mod trace;
pub mod vmm;

pub use error::Error;
pub use logger::set_sink as set_log_sink;
pub use platform::Platform;

/// Prints the panic report every target uses.
pub fn report_panic(location: Option<&core::panic::Location<'_>>, message: &dyn core::fmt::Display) {
    match location {
        Some(l) => println!("panicked at {}:{}:{}:\n{message}", l.file(), l.line(), l.column()),
        None => println!("panicked:\n{message}"),
    }
}

/// Bytes the application can still allocate, where the target knows.
pub fn free_memory() -> Option<usize> {
    platform::get().free_memory()
}
