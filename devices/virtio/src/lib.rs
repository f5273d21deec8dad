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
#[cfg(target_os = "none")]
mod mmio;
#[cfg(target_os = "none")]
mod pci;
mod transport;

#[cfg(target_os = "none")]
pub use hal::Hal;
use linkme::distributed_slice;
pub use transport::Transport;
use unikernel_core::Error;
pub use virtio_drivers::transport::DeviceType;

/// A driver for one virtio device type.
#[derive(Debug)]
pub struct Driver {
    pub name: &'static str,
    pub device: DeviceType,
    /// Takes the device over; `irq` is its interrupt line.
    pub probe: fn(Transport, irq: u8) -> Result<(), Error>,
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
        for (transport, irq) in mmio::devices().chain(pci::devices()) {
            probe(transport, irq).map_err(|e| alloc::format!("{e}"))?;
        }
        Ok(())
    };
    DONE.call_once(probe_every).clone().map_err(Error::msg)
}

#[cfg(target_os = "none")]
fn probe(transport: Transport, irq: u8) -> Result<(), Error> {
    use virtio_drivers::transport::Transport as _;
    let device = transport.device_type();
    match DRIVERS.iter().find(|d| d.device == device) {
        Some(driver) => {
            log::debug!("virtio: {device:?} on irq {irq} -> {}", driver.name);
            (driver.probe)(transport, irq).map_err(|e| Error::msg(alloc::format!("{}: {e}", driver.name)))
        }
        None => {
            log::debug!("virtio: {device:?} on irq {irq}: no driver in this image");
            Ok(())
        }
    }
}
