//! The virtio-net driver: registers with `unikernel-virtio` for network
//! devices and gives the network stack frames to receive and room to send.
//!
//! Receive buffers stay posted on the device and are reposted when the
//! stack is done with them; sends are asynchronous (a completed buffer is
//! reclaimed on the next send), so neither direction busy-waits. The device
//! interrupts on both queues; the handler acknowledges it and wakes the
//! stack. Only the first network device is driven. A device that breaks
//! the virtio protocol is stopped rather than trusted ([`driver`]).
//!
//! Stacks drive it through [`nic::Nic`], an [`embassy_net_driver::Driver`]:
//! the NIC trait of embassy-net, which `unikernel-net` takes too.
//!
//! The driver is generic over virtio-drivers' `Transport` and `Hal`, so the
//! host can test it against a fake device; images use the machine's.
#![no_std]

extern crate alloc;

pub mod driver;
pub mod nic;

pub use driver::RxFrame;
pub use embassy_net_driver;
#[cfg(target_os = "none")]
pub use machine::*;

#[cfg(target_os = "none")]
mod machine;
