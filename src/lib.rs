//! Rust unikernels: annotate `main`, get a bootable image that contains only
//! the components you named.
//!
//! ```ignore
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

pub use unikernel_core::{Error, cmdline, exit, free_memory, print, println};
/// `#[unikernel]`/`#[unikernel(components, options)]` on `main`.
pub use unikernel_macros::unikernel;
/// `#[unikernel::test]` registers an in-guest test; `unikernel::test_main!()`
/// makes a test image that runs them.
pub use unikernel_macros::{test, test_main};

/// Heap statistics of the bare-metal heap.
pub mod heap {
    pub use unikernel_core::heap::{Stats, stats};
}

/// What most applications import.
pub mod prelude {
    pub use crate::{Error, unikernel};
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
    pub use unikernel_core::component::{COMPONENTS, Component, Handle};
    pub use unikernel_core::runtime::{App, Config, Termination};
    pub use unikernel_core::test::{TESTS, Test, main as test_main};
    #[cfg(not(target_os = "none"))]
    pub use unikernel_hosted::start as hosted_start;
    // The boot code, linked into every bare-metal image.
    #[cfg(target_os = "none")]
    pub use unikernel_x86_64 as target;
}
