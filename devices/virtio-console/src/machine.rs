//! The driver on the machine: port 0 of the console `unikernel-virtio`
//! finds, transmit queue only, through its polled queue
//! (`unikernel_virtio::polled`): virtio-drivers' `VirtIOConsole` waits for
//! the host without end, so a host that stops reading would hang every
//! `log` call. Here each send has a deadline; past it the console is no
//! longer used and records go to the serial console.

use crate::line;
use core::time::Duration;
use linkme::distributed_slice;
use unikernel_core::Error;
use unikernel_core::sync::blocking::Mutex;
use unikernel_virtio::polled::PolledDevice;
use unikernel_virtio::{DRIVERS, DeviceType, Driver, Interrupt, Transport};

/// How long the host may take to take one buffer of a record.
const SEND_DEADLINE: Duration = Duration::from_secs(1);
/// Bytes per send; a longer record takes several.
const BUFFER: usize = 1024;
/// Port 0's transmit queue (virtio 1.2, 5.3.2).
const TRANSMIT_QUEUE: u16 = 1;

static DEVICE: spin::Once<Mutex<PolledDevice>> = spin::Once::new();

#[distributed_slice(DRIVERS)]
static VIRTIO_CONSOLE: Driver = Driver { name: "virtio-console", device: DeviceType::Console, probe };

fn probe(transport: Transport, _interrupt: Interrupt) -> Result<(), Error> {
    if DEVICE.is_completed() {
        log::warn!("virtio-console: a second console is not driven");
        return Ok(());
    }
    let device = PolledDevice::new(transport, TRANSMIT_QUEUE, BUFFER, SEND_DEADLINE)?;
    DEVICE.call_once(|| Mutex::new(device));
    Ok(())
}

/// Probes the machine's virtio devices; the log sink once the console is
/// among them.
pub fn start() -> Result<fn(&log::Record<'_>), Error> {
    unikernel_virtio::probe_all()?;
    match DEVICE.get() {
        Some(_) => Ok(send),
        None => Err(Error::msg(
            "no virtio console: start QEMU with one (the runner adds it to images with `virtio_console`)",
        )),
    }
}

/// Sends `record` to the console. A record logged while the console is
/// busy (by the driver itself, mid-send), or what is left of one the
/// device did not take in time, goes to the serial console instead: never
/// lost, never a deadlock, never a hang.
fn send(record: &log::Record<'_>) {
    let line = line(record);
    let mut rest = line.as_bytes();
    if let Some(mut console) = DEVICE.get().and_then(Mutex::try_lock) {
        while !rest.is_empty() {
            match console.send(rest) {
                Ok(sent) => rest = &rest[sent..],
                Err(_) => break,
            }
        }
    }
    if !rest.is_empty() {
        unikernel_core::print!("{}", alloc::string::String::from_utf8_lossy(rest));
    }
}
