//! Raw `Block` throughput, for `bench/storage.sh`: sequential 1 MiB and
//! random 4 KiB writes and reads over the first 32 MiB of the disk, and
//! key-value puts and gets with durability. Prints one line per figure:
//! `BLOCK name=... bytes=... seconds=... iops=...` and `KV name=... ops=... seconds=...`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec;
use unikernel::prelude::*;
use unikernel::time::Instant;
use unikernel_storage::{Block, BlockDevice, Store};

const SPAN: u64 = 32 << 20;
const SECTOR: u64 = 512;

fn report(name: &str, bytes: u64, requests: u64, start: Instant) {
    let seconds = start.elapsed().as_secs_f64();
    let iops = requests as f64 / seconds;
    unikernel::println!("BLOCK name={name} bytes={bytes} seconds={seconds:.4} iops={iops:.1}");
}

/// Random 4 KiB-aligned offsets in SPAN, reproducible (xorshift).
fn offsets(count: u64) -> impl Iterator<Item = u64> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..count).map(move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % (SPAN / 4096)) * 4096
    })
}

#[unikernel]
async fn main(disk: Block) -> Result<(), Error> {
    let mut big = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    for mib in 0..SPAN >> 20 {
        big = disk.write(mib * (1 << 20) / SECTOR, big).await?;
    }
    disk.flush().await?;
    report("seq-write", SPAN, SPAN >> 20, start);

    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    for mib in 0..SPAN >> 20 {
        buf = disk.read(mib * (1 << 20) / SECTOR, buf).await?;
    }
    report("seq-read", SPAN, SPAN >> 20, start);

    let mut page = vec![0xa5u8; 4096];
    let start = Instant::now();
    for offset in offsets(4096) {
        page = disk.write(offset / SECTOR, page).await?;
    }
    disk.flush().await?;
    report("rand-write", 4096 * 4096, 4096, start);

    let mut page = vec![0u8; 4096];
    let start = Instant::now();
    for offset in offsets(4096) {
        page = disk.read(offset / SECTOR, page).await?;
    }
    report("rand-read", 4096 * 4096, 4096, start);

    // The store after the raw area: format it fresh each run.
    let store = Store::format(disk).await?;
    let value = [7u8; 100];
    let start = Instant::now();
    for i in 0..500u32 {
        store.put(alloc::format!("key-{i}").as_bytes(), &value).await?;
    }
    let seconds = start.elapsed().as_secs_f64();
    unikernel::println!("KV name=put ops=500 seconds={seconds:.4} ops_per_s={:.1}", 500.0 / seconds);
    let start = Instant::now();
    for i in 0..500u32 {
        store.get(alloc::format!("key-{i}").as_bytes()).await?.ok_or_else(|| Error::msg("a key went missing"))?;
    }
    let seconds = start.elapsed().as_secs_f64();
    unikernel::println!("KV name=get ops=500 seconds={seconds:.4} ops_per_s={:.1}", 500.0 / seconds);
    // Recovery: one pass over the live half.
    let start = Instant::now();
    let records = Store::open(disk).await?.recovery().records;
    unikernel::println!("KV name=open records={records} seconds={:.4}", start.elapsed().as_secs_f64());
    Ok(())
}
