//! Registration with the machine: the device found by `unikernel-virtio`,
//! its interrupt, and the waker the stack registers through its `Context`.

use crate::driver;
use core::sync::atomic::{AtomicU64, Ordering};
use futures_util::task::AtomicWaker;
use linkme::distributed_slice;
use unikernel_core::Error;
use unikernel_core::sync::blocking::Mutex;
use unikernel_virtio::{DRIVERS, DeviceType, Driver, Hal, Interrupt, Transport};

/// The driver on this machine's transports.
pub type VirtioNet = driver::VirtioNet<Hal, Transport>;
/// The device as a stack drives it (see [`mod@crate::nic`]).
pub type Nic<'a> = crate::nic::Nic<'a, Hal, Transport>;

static DEVICE: spin::Once<Mutex<VirtioNet>> = spin::Once::new();
static WAKER: AtomicWaker = AtomicWaker::new();
static INTERRUPTS: AtomicU64 = AtomicU64::new(0);

#[distributed_slice(DRIVERS)]
static VIRTIO_NET: Driver = Driver { name: "virtio-net", device: DeviceType::Network, probe };

fn probe(transport: Transport, interrupt: Interrupt) -> Result<(), Error> {
    if DEVICE.is_completed() {
        log::warn!("virtio-net: a second network device is not driven");
        return Ok(());
    }
    let nic = VirtioNet::new(transport)?;
    log::info!("virtio-net: MAC {:02x?}", nic.mac());
    DEVICE.call_once(|| Mutex::new(nic));
    interrupt.register(on_interrupt)
}

fn on_interrupt() {
    INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    // Handlers run only while the executor halts, when no task holds the
    // lock; try_lock keeps a bug there from becoming a hang.
    if let Some(mut device) = DEVICE.get().and_then(Mutex::try_lock) {
        device.ack_interrupt();
    }
    WAKER.wake();
}

/// The network device, once `unikernel_virtio::probe_all` found one.
pub fn device() -> Option<&'static Mutex<VirtioNet>> {
    DEVICE.get()
}

/// `device` for one round of polling: its interrupt wakes the task whose
/// `Context` the stack passes to `receive` or `transmit`.
pub fn nic(device: &mut VirtioNet) -> Nic<'_> {
    Nic::new(device, &WAKER)
}

/// Device interrupts since boot.
pub fn interrupts() -> u64 {
    INTERRUPTS.load(Ordering::Relaxed)
}
