//! virtio for unikernel drivers: finds the machine's virtio devices and
//! hands each to the driver registered for its type.
//!
//! Drivers are written once against [`Transport`] (virtio-mmio or
//! virtio-pci) and register with [`DRIVERS`]. A driver
//! crate is linked only when a component mentions it, so an image holds
//! exactly the drivers its components need; devices without a driver are
//! left alone.
#![no_std]

extern crate alloc;

use alloc::string::String;

#[cfg(target_os = "none")]
mod hal;
#[cfg(any(target_os = "none", test))]
mod mmio;
#[cfg(target_os = "none")]
mod pci;
#[cfg(any(target_os = "none", test))]
mod pci_layout;
#[cfg(target_os = "none")]
pub mod polled;
mod transport;

#[cfg(target_os = "none")]
pub use hal::Hal;
use linkme::distributed_slice;
pub use transport::Transport;
use unikernel_core::Error;
use unikernel_core::bus::Line;
pub use virtio_drivers::transport::DeviceType;

/// How a device interrupts; its driver calls [`Interrupt::register`].
#[derive(Debug)]
pub enum Interrupt {
    /// A wired line of the platform.
    Line(Line),
    /// MSI-X (virtio-pci devices that have it).
    #[cfg(target_os = "none")]
    MsiX(pci::MsiX),
}

impl Interrupt {
    /// Calls `handler` on each interrupt of the device.
    pub fn register(self, handler: fn()) -> Result<(), Error> {
        match self {
            Self::Line(Line(line)) => unikernel_core::interrupt::register(line, handler),
            #[cfg(target_os = "none")]
            Self::MsiX(msix) => msix.register(handler),
        }
    }
}

impl core::fmt::Display for Interrupt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Line(line) => write!(f, "{line}"),
            #[cfg(target_os = "none")]
            Self::MsiX(_) => f.write_str("MSI-X"),
        }
    }
}

/// A driver for one virtio device type.
#[derive(Debug)]
pub struct Driver {
    /// Names the driver in logs and errors.
    pub name: &'static str,
    /// The virtio device type it drives.
    pub device: DeviceType,
    /// Takes the device over and registers for its interrupt.
    pub probe: fn(Transport, Interrupt) -> Result<(), Error>,
}

/// The drivers linked into this image.
#[distributed_slice]
pub static DRIVERS: [Driver];

/// Finds the virtio devices and probes each with its driver, once; later
/// calls return the first call's result. Components call this from their
/// `init`, after their driver is linked.
pub fn probe_all() -> Result<(), Error> {
    static DONE: spin::Once<Result<(), String>> = spin::Once::new();
    let probe_every = || {
        #[cfg(target_os = "none")]
        for (transport, interrupt) in mmio::devices().into_iter().chain(pci::devices()) {
            probe(transport, interrupt).map_err(|e| alloc::format!("{e}"))?;
        }
        Ok(())
    };
    DONE.call_once(probe_every).clone().map_err(Error::msg)
}

#[cfg(target_os = "none")]
fn probe(transport: Transport, interrupt: Interrupt) -> Result<(), Error> {
    use virtio_drivers::transport::Transport as _;
    let device = transport.device_type();
    match DRIVERS.iter().find(|d| d.device == device) {
        Some(driver) => {
            log::debug!("virtio: {device:?} on {interrupt} -> {}", driver.name);
            (driver.probe)(transport, interrupt).map_err(|e| Error::msg(alloc::format!("{}: {e}", driver.name)))
        }
        None => {
            log::debug!("virtio: {device:?} on {interrupt}: no driver in this image");
            Ok(())
        }
    }
}
