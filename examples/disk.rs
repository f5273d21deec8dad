//! Writes a pattern to the disk (several requests in flight), flushes,
//! reads it back and checks it, then shows that an out-of-range read is
//! refused. `sectors=N` (default 64) and `seed=S` (default 1) on the
//! command line; the host can check the raw image afterwards: byte `i` of
//! sector `s` is `s * 31 ^ i ^ seed` (mod 256).
//!
//! `cargo run --example disk -- sectors=128 seed=7`
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec::Vec;
use unikernel::future::join_all;
use unikernel::prelude::*;
use unikernel_storage::{Block, BlockDevice, BlockError};

/// Sectors per request.
const CHUNK: u64 = 8;

fn arg(name: &str, default: u64) -> Result<u64, Error> {
    unikernel::cmdline::value(name)
        .map_or(Ok(default), |v| v.parse().map_err(|_| Error::msg(alloc::format!("{name}={v} is not a number"))))
}

fn pattern(first: u64, count: u64, seed: u8) -> Vec<u8> {
    (first..first + count)
        .flat_map(|s| (0..512usize).map(move |i| (s as u8).wrapping_mul(31) ^ i as u8 ^ seed))
        .collect()
}

#[unikernel]
async fn main(disk: Block) -> Result<(), Error> {
    let (sectors, seed) = (arg("sectors", 64)?, arg("seed", 1)? as u8);
    unikernel::println!("disk: {} sectors of {} bytes", disk.sectors(), disk.sector_size());
    // Reads dropped while the device works on them (the timeout fires at
    // once; QEMU sometimes completes first): the request keeps its buffer
    // until the device is done, and the disk goes on working below.
    let mut cancelled = 0;
    for _ in 0..100 {
        let scratch = alloc::vec![0; 256 * 1024];
        cancelled += usize::from(timeout(Duration::ZERO, disk.read(0, scratch)).await.is_err());
    }
    unikernel::println!("disk: {cancelled} of 100 reads cancelled in flight");
    let chunks = || (0..sectors).step_by(CHUNK as usize).map(|s| (s, CHUNK.min(sectors - s)));
    let writes = join_all(chunks().map(|(s, n)| async move { disk.write(s, pattern(s, n, seed)).await })).await;
    writes.into_iter().collect::<Result<Vec<_>, _>>()?;
    disk.flush().await?;
    for (s, n) in chunks() {
        let buf = disk.read(s, alloc::vec![0; n as usize * 512]).await?;
        if buf != pattern(s, n, seed) {
            return Err(Error::msg(alloc::format!("sectors {s}..{} read back differently", s + n)));
        }
    }
    let past_end = disk.read(disk.sectors(), alloc::vec![0; 512]).await;
    assert!(matches!(past_end, Err(BlockError::OutOfRange { .. })), "{past_end:?}");
    unikernel::println!("disk: refused as expected: {}", past_end.unwrap_err());
    unikernel::println!("disk: wrote, flushed and verified {sectors} sectors (seed {seed})");
    Ok(())
}
