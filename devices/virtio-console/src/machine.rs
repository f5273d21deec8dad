//! The driver on the machine: one port of each console `unikernel-virtio`
//! finds, transmit queue only, through its polled queue
//! (`unikernel_virtio::polled`): virtio-drivers' `VirtIOConsole` waits for
//! the host without end, so a host that stops reading would hang every
//! `log` call. Here each send has a deadline; past it the console is no
//! longer used and what it would have carried goes to the serial console.
//!
//! Two consoles may be present: the log's and the host channel's. The
//! channel's is the one with [`virtio::CHANNEL_CONSOLE_PORTS`] ports in its
//! configuration, whatever order the devices are probed in. The log uses
//! port 0, a console port: QEMU drops what its host side cannot take at
//! once, which a file always does. The channel uses port 1, a serial port:
//! QEMU keeps a buffer its host side cannot take yet until it can, so a
//! slow reader slows the guest down (and past the deadline sends the
//! lines to the serial console) instead of losing them.

use core::time::Duration;
use linkme::distributed_slice;
use unikernel_core::Error;
use unikernel_core::sync::blocking::Mutex;
use unikernel_core::vmm::virtio;
use unikernel_virtio::polled::PolledDevice;
use unikernel_virtio::{DRIVERS, DeviceType, Driver, Interrupt, Transport};
use virtio_drivers::transport::Transport as _;

/// How long the host may take to take one buffer.
const SEND_DEADLINE: Duration = Duration::from_secs(1);
/// Bytes per send to the log's console; a longer record takes several.
const LOG_BUFFER: usize = 1024;
/// Port 0's transmit queue, the log's (virtio 1.2, 5.3.2).
const LOG_QUEUE: u16 = 1;
/// Port 1's transmit queue, the channel's (after port 0's two queues and
/// the control queues). QEMU drives it without `VIRTIO_CONSOLE_F_MULTIPORT`
/// negotiated, which the polled device does not offer to negotiate.
const CHANNEL_QUEUE: u16 = 5;
/// Offset of `max_nr_ports` in the configuration (virtio 1.2, 5.3.4).
const MAX_NR_PORTS: usize = 4;

/// One console, taken once.
pub type Console = spin::Once<Mutex<PolledDevice>>;

/// The log's console.
pub static LOG: Console = spin::Once::new();
/// The host channel's console: one buffer holds a whole channel line.
pub static CHANNEL: Console = spin::Once::new();

#[distributed_slice(DRIVERS)]
static VIRTIO_CONSOLE: Driver = Driver { name: "virtio-console", device: DeviceType::Console, probe };

fn probe(transport: Transport, _interrupt: Interrupt) -> Result<(), Error> {
    let ports = transport.read_config_space::<u32>(MAX_NR_PORTS).unwrap_or(0);
    let (console, queue, buffer, what) = if ports == virtio::CHANNEL_CONSOLE_PORTS {
        (&CHANNEL, CHANNEL_QUEUE, unikernel_core::channel::LINE, "channel")
    } else {
        (&LOG, LOG_QUEUE, LOG_BUFFER, "log")
    };
    if console.is_completed() {
        log::warn!("virtio-console: a second {what} console is not driven");
        return Ok(());
    }
    let device = PolledDevice::new(transport, queue, buffer, SEND_DEADLINE)?;
    console.call_once(|| Mutex::new(device));
    Ok(())
}

/// Probes the machine's virtio devices; fails unless `console` is among
/// them.
pub fn start(console: &Console) -> Result<(), Error> {
    unikernel_virtio::probe_all()?;
    match console.get() {
        Some(_) => Ok(()),
        None => Err(Error::msg(
            "no virtio console: start QEMU with one (the runner adds it to images with `virtio_console` or `channel`)",
        )),
    }
}

/// Sends `bytes` to `console`; returns what it did not take. Nothing is
/// sent while the console is busy (by the driver itself, mid-send, logging
/// a failure), and the rest of `bytes` once the device failed to take a
/// buffer in time: never a deadlock, never a hang.
pub fn send<'a>(console: &Console, bytes: &'a [u8]) -> &'a [u8] {
    let mut rest = bytes;
    if let Some(mut device) = console.get().and_then(Mutex::try_lock) {
        while !rest.is_empty() {
            match device.send(rest) {
                Ok(sent) => rest = &rest[sent..],
                Err(_) => break,
            }
        }
    }
    rest
}
