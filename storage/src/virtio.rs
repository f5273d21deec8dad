//! [`crate::Block`] on the virtio-blk driver.

use crate::BlockError;
use alloc::vec::Vec;
use core::future::poll_fn;
use core::ptr::NonNull;
use unikernel_core::Error;
use unikernel_virtio_blk::{BlkError, Ticket, VirtioBlk};

/// The driver's device.
pub struct Device {
    disk: &'static spin::Mutex<VirtioBlk>,
}

impl core::fmt::Debug for Device {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("virtio-blk")
    }
}

static DEVICE: spin::Once<Device> = spin::Once::new();

fn error(e: BlkError) -> BlockError {
    match e {
        BlkError::Io | BlkError::Driver => BlockError::Io,
        BlkError::Unsupported => BlockError::Unsupported,
    }
}

impl Device {
    pub fn start() -> Result<(), Error> {
        unikernel_virtio::probe_all()?;
        let disk = unikernel_virtio_blk::device().ok_or_else(|| {
            Error::msg("no virtio-blk device: start QEMU with one (the runner adds it to images with `block`)")
        })?;
        DEVICE.call_once(|| Device { disk });
        Ok(())
    }

    pub fn get() -> Result<&'static Self, Error> {
        DEVICE.get().ok_or_else(|| Error::msg("the block component has not started"))
    }

    pub fn sectors(&self) -> u64 {
        self.disk.lock().sectors()
    }

    /// Runs one request on `buf`, which the device reads (`write`) or fills.
    async fn request(&self, sector: u64, mut buf: Vec<u8>, write: bool) -> Result<Vec<u8>, BlockError> {
        let ptr = NonNull::from(buf.as_mut_slice());
        // SAFETY: the future owns `buf` until the device is done: `Pending`
        // below waits for the device, a drop before that waits in `Wait`,
        // and a forgotten future never frees it.
        let ticket =
            poll_fn(|cx| unsafe { self.disk.lock().submit(sector, ptr, write, cx.waker()) }).await.map_err(error)?;
        /// Dropped before the device is done, the future waits for it.
        struct Wait<'a>(&'a spin::Mutex<VirtioBlk>, Option<Ticket>);
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                if let Some(ticket) = self.1.take() {
                    self.0.lock().wait(ticket);
                }
            }
        }
        let mut wait = Wait(self.disk, Some(ticket));
        let result = poll_fn(|cx| self.disk.lock().poll(wait.1.as_ref().expect("until done"), cx.waker())).await;
        wait.1 = None;
        result.map_err(error).map(|()| buf)
    }

    pub async fn read(&self, sector: u64, buf: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        self.request(sector, buf, false).await
    }

    pub async fn write(&self, sector: u64, data: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        self.request(sector, data, true).await
    }

    pub async fn flush(&self) -> Result<(), BlockError> {
        poll_fn(|cx| self.disk.lock().poll_flush(cx.waker())).await.map_err(|e| match e {
            BlkError::Unsupported => BlockError::NoFlush,
            other => error(other),
        })
    }
}
