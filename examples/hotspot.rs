//! CPU-bound work with one obvious hot spot, to profile:
//! `cargo run --example hotspot -- --profile hotspot.svg` writes a flame
//! graph in which `collatz_longest` takes about nine tenths of the time
//! and `checksum_table` the rest. A fixed amount of work (about a second
//! under TCG in a debug build), so a run with and without `--profile`
//! compares their cost.
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;

/// Rounds of work; each round does both parts once.
const ROUNDS: u64 = 24;

/// The start below `limit` with the longest Collatz sequence. Plain
/// arithmetic only, so that even a debug build calls nothing from the loop
/// and the samples land in this function.
#[inline(never)]
fn collatz_longest(limit: u64) -> (u64, u64) {
    let mut best = (0, 0);
    let mut start = 1;
    while start < limit {
        let (mut n, mut steps) = (start, 0);
        while n != 1 {
            n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
            steps += 1;
        }
        if steps > best.1 {
            best = (start, steps);
        }
        start += 1;
    }
    best
}

/// A rolling checksum over a table: the lesser part.
#[inline(never)]
fn checksum_table(len: u64) -> u64 {
    let mut sum: u64 = 0;
    let mut i = 0;
    while i < len {
        sum = (sum ^ i) % 1_000_000_007 * 31 % 1_000_000_007;
        i += 1;
    }
    sum
}

#[unikernel]
fn main() -> Result<(), Error> {
    let (mut longest, mut sum) = ((0, 0), 0);
    for _ in 0..ROUNDS {
        longest = collatz_longest(core::hint::black_box(30_000));
        sum += checksum_table(core::hint::black_box(200_000));
    }
    println!("longest Collatz sequence below 30000 starts at {} ({} steps); checksum {sum}", longest.0, longest.1);
    Ok(())
}
