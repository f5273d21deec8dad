//! [`crate::Block`] on the virtio-blk driver.

use crate::BlockError;
use alloc::vec::Vec;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::task::{Context, Poll};
use unikernel_core::Error;
use unikernel_virtio_blk::{BlkError, Request, Ticket, VirtioBlk};

/// The driver's device.
pub struct Device {
    disk: &'static unikernel_core::sync::blocking::Mutex<VirtioBlk>,
}

impl core::fmt::Debug for Device {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("virtio-blk")
    }
}

static DEVICE: spin::Once<Device> = spin::Once::new();

/// The error of a request on `len` bytes.
fn error(e: BlkError, len: usize) -> BlockError {
    match e {
        BlkError::Io | BlkError::Driver => BlockError::Io,
        BlkError::Unsupported => BlockError::Unsupported,
        BlkError::Unaligned => BlockError::Unaligned { len },
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

    /// Runs `request` until the device is done; hands back its buffer.
    async fn run(&self, request: Request) -> Result<Vec<u8>, BlkError> {
        // Only when tracing: without it the future keeps nothing for it.
        unikernel_core::if_tracing! {
            let (operation, sector) = match request {
                Request::Read { sector, .. } => (0, sector),
                Request::Write { sector, .. } => (1, sector),
                Request::Flush => (2, 0),
            };
            unikernel_core::trace_event!(BlockStart, operation, sector);
        }
        let mut request = Some(request);
        let done = match poll_fn(|cx| self.disk.lock().submit(&mut request, cx.waker())).await {
            Ok(ticket) => InFlight { disk: self.disk, ticket: Some(ticket) }.await,
            Err(e) => Err(e),
        };
        unikernel_core::if_tracing! { unikernel_core::trace_event!(BlockEnd, done.is_err(), sector); }
        done
    }

    pub async fn read(&self, sector: u64, buf: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        let len = buf.len();
        self.run(Request::Read { sector, buf }).await.map_err(|e| error(e, len))
    }

    pub async fn write(&self, sector: u64, buf: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        let len = buf.len();
        self.run(Request::Write { sector, buf }).await.map_err(|e| error(e, len))
    }

    pub async fn flush(&self) -> Result<(), BlockError> {
        self.run(Request::Flush).await.map(drop).map_err(|e| match e {
            BlkError::Unsupported => BlockError::NoFlush,
            BlkError::Io | BlkError::Driver | BlkError::Unaligned => BlockError::Io,
        })
    }
}

/// A request the device holds: dropped before it is done, it leaves its
/// buffer to the driver, which frees it when the device completes.
struct InFlight {
    disk: &'static unikernel_core::sync::blocking::Mutex<VirtioBlk>,
    ticket: Option<Ticket>,
}

impl Future for InFlight {
    type Output = Result<Vec<u8>, BlkError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = self.disk.lock().poll(self.ticket.as_ref().expect("polled after completion"), cx.waker());
        if result.is_ready() {
            self.ticket = None;
        }
        result
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.disk.lock().abandon(ticket);
        }
    }
}
