//! The driver on the machine: virtio-drivers' `VirtIOConsole` on the
//! device `unikernel-virtio` finds, port 0 only. A record is one buffer the
//! host takes at once, so sends are polled, not interrupt-driven.

use crate::line;
use alloc::format;
use linkme::distributed_slice;
use unikernel_core::Error;
use unikernel_core::sync::blocking::Mutex;
use unikernel_virtio::{DRIVERS, DeviceType, Driver, Hal, Interrupt, Transport};
use virtio_drivers::device::console::VirtIOConsole;

static DEVICE: spin::Once<Mutex<VirtIOConsole<Hal, Transport>>> = spin::Once::new();

#[distributed_slice(DRIVERS)]
static VIRTIO_CONSOLE: Driver = Driver { name: "virtio-console", device: DeviceType::Console, probe };

fn probe(transport: Transport, _interrupt: Interrupt) -> Result<(), Error> {
    if DEVICE.is_completed() {
        log::warn!("virtio-console: a second console is not driven");
        return Ok(());
    }
    let console = VirtIOConsole::new(transport).map_err(|e| Error::msg(format!("{e}")))?;
    DEVICE.call_once(|| Mutex::new(console));
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
/// busy (by virtio-drivers itself, mid-send) or that the device refuses
/// goes to the serial console instead: never lost, never a deadlock.
fn send(record: &log::Record<'_>) {
    let line = line(record);
    let sent =
        DEVICE.get().and_then(Mutex::try_lock).is_some_and(|mut console| console.send_bytes(line.as_bytes()).is_ok());
    if !sent {
        unikernel_core::print!("{line}");
    }
}
