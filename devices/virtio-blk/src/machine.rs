//! Registration with the machine: the device found by `unikernel-virtio`
//! and its interrupt.

use crate::queue;
use linkme::distributed_slice;
use unikernel_core::Error;
use unikernel_core::sync::blocking::Mutex;
use unikernel_virtio::{DRIVERS, DeviceType, Driver, Hal, Interrupt, Transport};

/// The driver on this machine's transports.
pub type VirtioBlk = queue::VirtioBlk<Hal, Transport>;

static DEVICE: spin::Once<Mutex<VirtioBlk>> = spin::Once::new();

#[distributed_slice(DRIVERS)]
static VIRTIO_BLK: Driver = Driver { name: "virtio-blk", device: DeviceType::Block, probe };

fn probe(transport: Transport, interrupt: Interrupt) -> Result<(), Error> {
    if DEVICE.is_completed() {
        log::warn!("virtio-blk: a second block device is not driven");
        return Ok(());
    }
    let disk = VirtioBlk::new(transport)?;
    log::info!("virtio-blk: {} sectors of 512 bytes, flush {}", disk.sectors(), disk.can_flush());
    DEVICE.call_once(|| Mutex::new(disk));
    interrupt.register(on_interrupt)
}

fn on_interrupt() {
    // Handlers run only while the executor halts, when no task holds the
    // lock; try_lock keeps a bug there from becoming a hang.
    if let Some(mut disk) = DEVICE.get().and_then(Mutex::try_lock) {
        disk.on_interrupt();
    }
}

/// The block device, once `unikernel_virtio::probe_all` found one.
pub fn device() -> Option<&'static Mutex<VirtioBlk>> {
    DEVICE.get()
}
