//! The driver on the machine: virtio-drivers' `VirtIORng` on the device
//! `unikernel-virtio` finds. Requests are polled, not interrupt-driven: a
//! request is one small buffer the host fills at once, and polling keeps
//! the driver usable wherever `getrandom` is called.

use alloc::format;
use linkme::distributed_slice;
use unikernel_core::Error;
use unikernel_core::sync::blocking::Mutex;
use unikernel_entropy::DeviceFill;
use unikernel_virtio::{DRIVERS, DeviceType, Driver, Hal, Interrupt, Transport};
use virtio_drivers::device::rng::VirtIORng;

/// Requests in a row the device may answer with no bytes before the driver
/// gives up on it, rather than spinning forever on a broken device.
const EMPTY_REPLIES: usize = 16;

static DEVICE: spin::Once<Mutex<VirtIORng<Hal, Transport>>> = spin::Once::new();

#[distributed_slice(DRIVERS)]
static VIRTIO_RNG: Driver = Driver { name: "virtio-rng", device: DeviceType::EntropySource, probe };

fn probe(transport: Transport, _interrupt: Interrupt) -> Result<(), Error> {
    if DEVICE.is_completed() {
        log::warn!("virtio-rng: a second entropy device is not driven");
        return Ok(());
    }
    let mut rng = VirtIORng::new(transport).map_err(|e| Error::msg(format!("{e}")))?;
    // Polled: the device need not interrupt.
    rng.disable_interrupts();
    DEVICE.call_once(|| Mutex::new(rng));
    log::info!("virtio-rng: entropy device ready");
    Ok(())
}

/// Probes the machine's virtio devices; the fill to register once the
/// entropy device is among them.
pub fn start() -> Result<DeviceFill, Error> {
    unikernel_virtio::probe_all()?;
    match DEVICE.get() {
        Some(_) => Ok(fill),
        None => Err(Error::msg(
            "no virtio entropy device: start QEMU with one (the runner adds it to images with `virtio_rng`)",
        )),
    }
}

/// Fills `buf` from the device; the host may answer a request with fewer
/// bytes than asked, never with more.
fn fill(buf: &mut [u8]) -> Result<(), Error> {
    let mut rng = DEVICE.get().ok_or_else(|| Error::msg("virtio-rng has not started"))?.lock();
    let (mut filled, mut empty) = (0, 0);
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        let got = rng.request_entropy(rest).map_err(|e| Error::msg(format!("virtio-rng: {e}")))?;
        if got > rest.len() {
            return Err(Error::msg("virtio-rng: the device claims to have written past the buffer"));
        }
        empty = if got == 0 { empty + 1 } else { 0 };
        if empty == EMPTY_REPLIES {
            return Err(Error::msg("virtio-rng: the device keeps returning no bytes"));
        }
        filled += got;
    }
    Ok(())
}
