//! [`crate::Block`] on a file, for the hosted target: `disk=PATH` on the
//! command line, else `UNIKERNEL_DISK`. Flush is `fdatasync`.

use crate::{BlockError, SECTOR_SIZE};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;
use unikernel_core::{Error, cmdline};

#[derive(Debug)]
pub struct Device {
    file: File,
    sectors: u64,
}

static DEVICE: OnceLock<Device> = OnceLock::new();

fn io(e: std::io::Error) -> BlockError {
    log::warn!("disk file: {e}");
    BlockError::Io
}

impl Device {
    pub fn start() -> Result<(), Error> {
        let path =
            cmdline::value("disk").map(String::from).or_else(|| std::env::var("UNIKERNEL_DISK").ok()).ok_or_else(
                || Error::msg("the hosted `block` component needs a disk file: pass disk=PATH or set UNIKERNEL_DISK"),
            )?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::msg(format!("cannot open the disk file {path}: {e}")))?;
        let len = file.metadata().map_err(|e| Error::msg(format!("{path}: {e}")))?.len();
        log::info!("block: {path}, {} sectors", len / SECTOR_SIZE as u64);
        let _ = DEVICE.set(Device { file, sectors: len / SECTOR_SIZE as u64 });
        Ok(())
    }

    pub fn get() -> Result<&'static Self, Error> {
        DEVICE.get().ok_or_else(|| Error::msg("the block component has not started"))
    }

    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    pub async fn read(&self, sector: u64, mut buf: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        self.file.read_exact_at(&mut buf, sector * SECTOR_SIZE as u64).map_err(io)?;
        Ok(buf)
    }

    pub async fn write(&self, sector: u64, data: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        self.file.write_all_at(&data, sector * SECTOR_SIZE as u64).map_err(io)?;
        Ok(data)
    }

    pub async fn flush(&self) -> Result<(), BlockError> {
        self.file.sync_data().map_err(io)
    }
}
