//! The transport drivers see: virtio-drivers' MMIO or PCI transport with
//! `VIRTIO_F_EVENT_IDX` withheld from negotiation.
//!
//! virtio-drivers 0.13 decides whether to notify the device with
//! `avail_idx >= avail_event + 1`, which is wrong once the 16-bit ring
//! index wraps (after 65,536 buffers): the device then waits for a
//! notification that never comes and the queue stalls. Without EVENT_IDX it
//! uses the ring's flags, which have no such arithmetic.
//!
//! It also bounds `read_consistent`: virtio-drivers retries for as long as
//! the configuration generation changes, so a device that keeps changing it
//! would hang the guest while it probes.

use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, SomeTransport};
use virtio_drivers::{Error, PhysAddr, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Feature bit 29, `VIRTIO_F_EVENT_IDX`.
const EVENT_IDX: u64 = 1 << 29;

/// Reads of the configuration space retried while the device changes it.
const CONFIG_RETRIES: usize = 16;

/// A device's transport: MMIO or PCI on the machine; the fuzz harness wraps
/// a fake device in it to test drivers against what the guest really runs.
pub struct Transport<D = SomeTransport<'static>>(D);

impl<D> Transport<D> {
    /// Wraps `transport`.
    #[doc(hidden)]
    pub fn new(transport: D) -> Self {
        Self(transport)
    }
}

impl<D: virtio_drivers::transport::Transport> virtio_drivers::transport::Transport for Transport<D> {
    fn device_type(&self) -> DeviceType {
        self.0.device_type()
    }

    fn read_device_features(&mut self) -> u64 {
        self.0.read_device_features() & !EVENT_IDX
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.0.write_driver_features(driver_features)
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.0.max_queue_size(queue)
    }

    fn notify(&mut self, queue: u16) {
        self.0.notify(queue)
    }

    fn get_status(&self) -> DeviceStatus {
        self.0.get_status()
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.0.set_status(status)
    }

    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.0.set_guest_page_size(guest_page_size)
    }

    fn requires_legacy_layout(&self) -> bool {
        self.0.requires_legacy_layout()
    }

    fn queue_set(&mut self, queue: u16, size: u32, descriptors: PhysAddr, driver: PhysAddr, device: PhysAddr) {
        self.0.queue_set(queue, size, descriptors, driver, device)
    }

    fn queue_unset(&mut self, queue: u16) {
        self.0.queue_unset(queue)
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.0.queue_used(queue)
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.0.ack_interrupt()
    }

    fn read_config_generation(&self) -> u32 {
        self.0.read_config_generation()
    }

    fn read_config_space<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T> {
        self.0.read_config_space(offset)
    }

    fn write_config_space<T: IntoBytes + Immutable>(&mut self, offset: usize, value: T) -> Result<()> {
        self.0.write_config_space(offset, value)
    }

    fn read_consistent<V>(&self, read: impl Fn() -> Result<V>) -> Result<V> {
        for _ in 0..CONFIG_RETRIES {
            let before = self.read_config_generation();
            let result = read();
            if self.read_config_generation() == before {
                return result;
            }
        }
        log::warn!("virtio: the device kept changing its configuration while it was read");
        Err(Error::IoError)
    }
}
