//! The driver on the machine: the device `unikernel-virtio` finds, through
//! its polled queue (`unikernel_virtio::polled`): virtio-drivers'
//! `VirtIORng` waits for each answer without end, and a host that never
//! answers (or a rate limit of a byte a minute) would then hang every
//! `getrandom` caller. Here each request has a deadline; past it the device
//! is no longer used and every later fill fails at once.
//!
//! Requests are polled, not interrupt-driven: a request is one small
//! buffer the host fills at once, and polling keeps the driver usable
//! wherever `getrandom` is called.

use alloc::format;
use core::time::Duration;
use linkme::distributed_slice;
use unikernel_core::Error;
use unikernel_core::sync::blocking::Mutex;
use unikernel_entropy::DeviceFill;
use unikernel_virtio::polled::PolledDevice;
use unikernel_virtio::{DRIVERS, DeviceType, Driver, Interrupt, Transport};

/// How long the device may take to fill one request: far more than a host
/// needs (microseconds), far less than a caller should wait.
const ANSWER_DEADLINE: Duration = Duration::from_secs(1);
/// Requests in a row the device may answer with no bytes before the driver
/// gives up on it, rather than spinning forever on a broken device.
const EMPTY_REPLIES: usize = 16;
/// Bytes asked for per request.
const REQUEST: usize = 64;
/// Its one queue (virtio 1.2, 5.4.2).
const QUEUE: u16 = 0;

static DEVICE: spin::Once<Mutex<PolledDevice>> = spin::Once::new();

#[distributed_slice(DRIVERS)]
static VIRTIO_RNG: Driver = Driver { name: "virtio-rng", device: DeviceType::EntropySource, probe };

fn probe(transport: Transport, _interrupt: Interrupt) -> Result<(), Error> {
    if DEVICE.is_completed() {
        log::warn!("virtio-rng: a second entropy device is not driven");
        return Ok(());
    }
    let device = PolledDevice::new(transport, QUEUE, REQUEST, ANSWER_DEADLINE)?;
    DEVICE.call_once(|| Mutex::new(device));
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
        let got = rng.receive().map_err(|why| Error::msg(format!("virtio-rng: {why}")))?;
        let take = got.len().min(buf.len() - filled);
        buf[filled..filled + take].copy_from_slice(&got[..take]);
        empty = if got.is_empty() { empty + 1 } else { 0 };
        if empty == EMPTY_REPLIES {
            return Err(Error::msg("virtio-rng: the device keeps returning no bytes"));
        }
        filled += take;
    }
    Ok(())
}
