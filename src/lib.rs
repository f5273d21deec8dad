//! Rust unikernels: annotate `main`, get a bootable image that contains only
//! the components you named.
//!
//! ```
//! #![cfg_attr(target_os = "none", no_std, no_main)]
//! use unikernel::prelude::*;
//!
//! #[unikernel]
//! fn main() -> Result<(), Error> {
//!     println!("Hello from a unikernel! (cmdline: {:?})", unikernel::cmdline::get());
//!     Ok(())
//! }
//! ```
//!
//! `cargo run` boots it in QEMU; with `--target x86_64-unknown-linux-gnu`
//! the same crate runs as a Linux process.
#![no_std]
#![forbid(unsafe_code)]

pub use unikernel_core::{Error, cmdline, exit, free_memory, print, println};
/// `#[unikernel]`/`#[unikernel(components, options)]` on `main`: the
/// parameters of `main` and the attribute's items name the components.
pub use unikernel_macros::unikernel;
/// `#[unikernel::test]` registers an in-guest test; `unikernel::test_main!()`
/// makes a test image that runs them.
pub use unikernel_macros::{test, test_main};

pub use unikernel_core::executor::{JoinHandle, block_on, spawn};
pub use unikernel_core::timer::{Elapsed, Interval, Sleep, Timeout, interval, sleep, sleep_until, timeout};
/// Timer internals worth observing (tests, diagnostics).
pub mod timer {
    pub use unikernel_core::timer::pending;
}
/// Counters and gauges of the runtime and the components, in the
/// Prometheus text format with [`metrics::render`].
pub use unikernel_core::metrics;
pub use unikernel_core::{interrupt, restore, sync, time, trace, trace_span};

/// Combinators for futures (`join`, `select`, `AtomicWaker`, ...), from
/// `futures-util` (no_std).
pub mod future {
    pub use futures_util::future::{Either, join, join_all, join3, select, select_all};
    pub use futures_util::task::AtomicWaker;
    pub use futures_util::{FutureExt, join, pin_mut, select_biased};
}

/// For component crates: what a component implements ([`Component`](component::Component), its
/// [`Handle`](component::Handle)) and the macros its name's macro expands to; for tests,
/// whether the image contains a component.
pub mod component {
    pub use unikernel_core::component::{Component, Entry, Handle, entry, linked, options};
    /// Devices a component needs from the VMM: `Component::NEEDS`.
    pub use unikernel_core::vmm;
}

/// Heap statistics of the bare-metal heap.
pub mod heap {
    pub use unikernel_core::heap::{Stats, stats};
}

/// What most applications import.
pub mod prelude {
    pub use crate::time::{Duration, Instant, SystemTime};
    pub use crate::{Error, sleep, spawn, timeout, unikernel};
    // Hosted builds have std's `println!`, which also writes to stdout; a
    // glob import of ours would make the name ambiguous there.
    #[cfg(target_os = "none")]
    pub use crate::{print, println};
}

/// What the macros expand to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use linkme;
    pub use log::LevelFilter;
    pub use unikernel_core::component::init_all as init_components;
    pub use unikernel_core::component::{
        COMPONENTS, Entry, Handle, check_distinct, records as component_records, records_len,
    };
    pub use unikernel_core::executor::block_on;
    pub use unikernel_core::runtime::{App, Config, Termination, no_components};
    pub use unikernel_core::test::{TESTS, Test, main as test_main};
    pub use unikernel_core::{forward, vmm};
    #[cfg(not(target_os = "none"))]
    pub use unikernel_hosted::start as hosted_start;
    // The boot code, linked into every bare-metal image.
    #[cfg(all(target_os = "none", target_arch = "aarch64"))]
    pub use unikernel_aarch64 as target;
    #[cfg(all(target_os = "none", target_arch = "x86_64"))]
    pub use unikernel_x86_64 as target;
}
