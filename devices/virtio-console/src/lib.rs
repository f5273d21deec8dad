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
//!
//! The crate's other component, [`channel`], carries the host channel
//! (`unikernel_core::channel`: a packet capture, a trace) on a virtio
//! console of its own instead of the serial one.
#![cfg_attr(target_os = "none", no_std)]

extern crate alloc;

mod channel;
#[cfg(target_os = "none")]
mod machine;

use alloc::string::String;
use core::fmt::Write as _;
use unikernel_core::Error;
use unikernel_core::component::Component;
use unikernel_core::vmm::{Record, virtio};

pub use channel::{Channel, ChannelOptions};

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
        let sink = machine::start(&machine::LOG).map(|()| log_to_console)?;
        #[cfg(not(target_os = "none"))]
        let sink: fn(&log::Record<'_>) = |record| eprint!("{}", line(record));
        if unikernel_core::set_log_sink(sink) {
            Ok(())
        } else {
            Err(Error::msg("another component already took the log records"))
        }
    }
}

/// Sends `record` to the log's console. A record logged while the console
/// is busy (by the driver itself, mid-send), or what is left of one the
/// device did not take in time, goes to the serial console instead: never
/// lost.
#[cfg(target_os = "none")]
fn log_to_console(record: &log::Record<'_>) {
    let line = line(record);
    let rest = machine::send(&machine::LOG, line.as_bytes());
    if !rest.is_empty() {
        unikernel_core::print!("{}", alloc::string::String::from_utf8_lossy(rest));
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

/// Names the [`Channel`] component in `#[unikernel(...)]`:
/// `unikernel_virtio_console::channel` (no options yet).
#[doc(hidden)]
#[macro_export]
macro_rules! __virtio_console_channel {
    ($($options:tt)*) => {
        $crate::__unikernel::component::options!($crate::Channel, $crate::ChannelOptions; $($options)*)
    };
}
pub use __virtio_console_channel as channel;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
