//! The `block` component: `#[unikernel] async fn main(disk: Block)`.
//!
//! [`BlockDevice`] is the async interface storage code targets: whole
//! sectors in, whole sectors out, and a flush after which everything
//! written is durable. [`Block`] implements it on the virtio-blk driver on
//! bare metal, and on a file (with `fdatasync` for flush) when hosted.
#![cfg_attr(target_os = "none", no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

mod error;
#[cfg(not(target_os = "none"))]
mod file;
pub mod kv;
pub mod metrics;
#[cfg(target_os = "none")]
mod virtio;

pub use error::BlockError;
#[cfg(not(target_os = "none"))]
use file::Device;
pub use kv::{Limits, Recovery, Store, StoreError};
#[cfg(target_os = "none")]
use virtio::Device;

/// Bytes per sector.
pub const SECTOR_SIZE: usize = 512;

/// An async block device.
#[allow(async_fn_in_trait)] // single-threaded executor: no Send bound wanted
pub trait BlockDevice {
    /// Bytes per sector; reads and writes cover whole sectors.
    fn sector_size(&self) -> usize;
    /// Capacity in sectors.
    fn sectors(&self) -> u64;
    /// Reads `buf.len()` bytes (a multiple of the sector size) from
    /// `sector` into `buf` and hands it back.
    ///
    /// Buffers are owned, not borrowed: a device may write into them by DMA
    /// after a cancelled request's future is gone, so the request keeps the
    /// buffer until the device is done (a forgotten future leaks it).
    async fn read(&self, sector: u64, buf: Vec<u8>) -> Result<Vec<u8>, BlockError>;
    /// Writes `data` (a multiple of the sector size) at `sector` and hands
    /// the buffer back; durable only after [`BlockDevice::flush`].
    async fn write(&self, sector: u64, data: Vec<u8>) -> Result<Vec<u8>, BlockError>;
    /// Makes every completed write durable; fails with
    /// [`BlockError::NoFlush`] on a device that cannot promise that.
    async fn flush(&self) -> Result<(), BlockError>;
}

/// Options of `block(...)` in `#[unikernel]` (none yet).
#[derive(Debug, Default)]
pub struct Options {}

/// The handle `main` receives: the machine's disk.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    device: &'static Device,
}

impl Block {
    /// Checks that `len` bytes at `sector` are whole sectors on the disk.
    fn check(&self, sector: u64, len: usize) -> Result<(), BlockError> {
        if len == 0 || !len.is_multiple_of(SECTOR_SIZE) {
            return Err(BlockError::Unaligned { len });
        }
        let count = (len / SECTOR_SIZE) as u64;
        match sector.checked_add(count) {
            Some(end) if end <= self.sectors() => Ok(()),
            _ => Err(BlockError::OutOfRange { sector, count, sectors: self.sectors() }),
        }
    }
}

impl BlockDevice for Block {
    fn sector_size(&self) -> usize {
        SECTOR_SIZE
    }

    fn sectors(&self) -> u64 {
        self.device.sectors()
    }

    async fn read(&self, sector: u64, buf: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        self.check(sector, buf.len())?;
        let len = buf.len();
        let result = self.device.read(sector, buf).await;
        metrics::count(&result, &metrics::READS, &metrics::READ_BYTES, len);
        result
    }

    async fn write(&self, sector: u64, data: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        self.check(sector, data.len())?;
        let len = data.len();
        let result = self.device.write(sector, data).await;
        metrics::count(&result, &metrics::WRITES, &metrics::WRITTEN_BYTES, len);
        result
    }

    async fn flush(&self) -> Result<(), BlockError> {
        let result = self.device.flush().await;
        match result {
            Ok(()) => metrics::FLUSHES.inc(),
            Err(_) => metrics::ERRORS.inc(),
        }
        result
    }
}

impl unikernel_core::component::Component for Block {
    const NAME: &'static str = "block";
    /// A disk for the VMM to attach.
    const NEEDS: &'static [unikernel_core::vmm::Record] =
        &[unikernel_core::vmm::Record::virtio(unikernel_core::vmm::virtio::BLOCK, Self::NAME).required()];
    type Options = Options;

    fn init(_options: &Options) -> Result<(), unikernel_core::Error> {
        Device::start()
    }
}

impl unikernel_core::component::Handle for Block {
    type Component = Self;

    fn take() -> Result<Self, unikernel_core::Error> {
        Ok(Self { device: Device::get()? })
    }
}

#[doc(hidden)]
pub use unikernel_core as __unikernel;

/// Names the component in `#[unikernel(...)]`: `block` (no options yet).
/// A parameter `disk: Block` of `main` alone starts it too.
#[doc(hidden)]
#[macro_export]
macro_rules! __block {
    ($($options:tt)*) => {
        $crate::__unikernel::component::options!($crate::Block, $crate::Options; $($options)*)
    };
}
pub use __block as block;
