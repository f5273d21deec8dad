//! The `virtio_console` component: `log` records go to a virtio console
//! (virtio device id 3), a channel of their own, while the serial console
//! stays the application's (`println!`).
//!
//! ```
//! use unikernel::prelude::*;
//!
//! #[unikernel(unikernel_virtio_console::virtio_console, log = "debug")]
//! fn main() {
//!     log::info!("to the log file");
//!     unikernel::println!("to the console");
//! }
//! ```
//!
//! The runner attaches the device to a file it names when the image starts
//! (`.unikernel/IMAGE-console.log`). Records written before the component
//! starts, and any the device cannot take, go to the serial console as
//! before. Hosted, records go to standard error.
#![cfg_attr(target_os = "none", no_std)]

extern crate alloc;

#[cfg(target_os = "none")]
mod machine;

use alloc::string::String;
use core::fmt::Write as _;
use unikernel_core::Error;
use unikernel_core::component::Component;
use unikernel_core::vmm::{Record, virtio};

/// The component; named in `#[unikernel(...)]` with [`virtio_console!`].
#[derive(Debug)]
pub struct VirtioConsole;

/// Options of `virtio_console(...)`: none yet.
#[derive(Debug, Default)]
pub struct Options {}

impl Component for VirtioConsole {
    const NAME: &'static str = "virtio_console";
    /// A console for the VMM to attach.
    const NEEDS: &'static [Record] = &[Record::virtio(virtio::CONSOLE, Self::NAME).required()];
    type Options = Options;

    fn init(_options: &Options) -> Result<(), Error> {
        #[cfg(target_os = "none")]
        let sink = machine::start()?;
        #[cfg(not(target_os = "none"))]
        let sink: fn(&log::Record<'_>) = |record| eprint!("{}", line(record));
        if unikernel_core::set_log_sink(sink) {
            Ok(())
        } else {
            Err(Error::msg("another component already took the log records"))
        }
    }
}

/// A record as the serial console shows it: `[LEVEL target] message`.
fn line(record: &log::Record<'_>) -> String {
    let mut line = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(line, "[{:<5} {}] {}", record.level(), record.target(), record.args());
    line
}

#[doc(hidden)]
pub use unikernel_core as __unikernel;

/// Names the component in `#[unikernel(...)]`: `virtio_console` (no
/// options yet).
#[doc(hidden)]
#[macro_export]
macro_rules! __virtio_console {
    ($($options:tt)*) => {
        $crate::__unikernel::component::options!($crate::VirtioConsole, $crate::Options; $($options)*)
    };
}
pub use __virtio_console as virtio_console;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
