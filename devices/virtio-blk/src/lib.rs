//! The virtio-blk driver: registers with `unikernel-virtio` for block
//! devices. Requests are asynchronous and several can be in flight; the
//! device reads and writes the request's own buffer directly (no copy),
//! and a request whose task gives up leaves its buffer to the driver until
//! the device is done with it. Completions arrive by interrupt. A device
//! that breaks the virtio protocol is failed rather than trusted
//! ([`queue`]).
//!
//! Flush is a request like the others: the CPU does not wait for the
//! host's `fdatasync`.
//!
//! The driver is generic over virtio-drivers' `Transport` and `Hal`, so the
//! host can test it against a fake device; images use the machine's.
#![no_std]

extern crate alloc;

pub mod queue;

#[cfg(target_os = "none")]
pub use machine::*;
pub use queue::{BlkError, Request, Ticket};

#[cfg(target_os = "none")]
mod machine;
