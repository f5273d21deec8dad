use super::{DiskZoneError, read_zone};
use crate::ZoneLimits;
use core::cell::Cell;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

/// A disk in memory that counts the bytes read.
struct Memory {
    bytes: Vec<u8>,
    read: Cell<usize>,
    fail: bool,
}

impl Memory {
    fn new(bytes: &[u8], sectors: usize) -> Self {
        let mut bytes = bytes.to_vec();
        bytes.resize(sectors * 512, 0);
        Self { bytes, read: Cell::new(0), fail: false }
    }
}

/// Runs `read_zone` on `disk` (its futures are ready at once).
fn read(disk: &Memory, limits: &ZoneLimits) -> Result<crate::Zone, DiskZoneError> {
    let sectors = (disk.bytes.len() / 512) as u64;
    let mut future = pin!(read_zone(
        sectors,
        512,
        async |sector, mut buf: Vec<u8>| {
            if disk.fail {
                return Err("I/O error");
            }
            let (at, len) = (sector as usize * 512, buf.len());
            buf.copy_from_slice(&disk.bytes[at..at + len]);
            disk.read.set(disk.read.get() + len);
            Ok(buf)
        },
        limits
    ));
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => unreachable!("a memory disk never waits"),
    }
}

const ZONE: &[u8] = include_bytes!("../../../../examples/dns/example.test.zone");

#[test]
fn the_text_ends_at_the_first_zero_byte_or_the_disks_end() {
    // Padded with zeros over many chunks: reading stops at the zero.
    let padded = Memory::new(ZONE, 1024);
    assert_eq!(read(&padded, &ZoneLimits::default()).unwrap().record_count(), 20);
    assert!(padded.read.get() < 128 * 1024, "read {} bytes of a 512 KiB disk", padded.read.get());
    // Filling the disk exactly, with no zero after it.
    let mut exact = ZONE.to_vec();
    exact.resize(ZONE.len().next_multiple_of(512), b'\n');
    assert_eq!(read(&Memory::new(&exact, exact.len() / 512), &ZoneLimits::default()).unwrap().record_count(), 20);
}

#[test]
fn empty_oversized_unreadable_and_damaged_disks_are_refused() {
    let limits = ZoneLimits::default();
    let message = |r: Result<crate::Zone, DiskZoneError>| r.unwrap_err().to_string();
    assert_eq!(
        message(read(&Memory::new(b"", 64), &limits)),
        "the disk holds no zone: it starts with a zero byte (boot with --disk ZONEFILE)"
    );
    assert_eq!(message(read(&Memory::new(b"", 0), &limits)), message(read(&Memory::new(b"", 1), &limits)));
    // No zero byte within the limit: refused after reading just past it.
    let small = ZoneLimits { max_text: ZONE.len() - 1, ..limits };
    let disk = Memory::new(&ZONE.repeat(100), 100 * ZONE.len() / 512);
    assert_eq!(
        message(read(&disk, &small)),
        format!("the zone on the disk is refused: larger than {} bytes", ZONE.len() - 1)
    );
    assert!(disk.read.get() <= 64 * 1024, "read {} bytes", disk.read.get());
    let failing = Memory { fail: true, ..Memory::new(ZONE, 64) };
    assert_eq!(message(read(&failing, &limits)), "the zone's disk cannot be read: I/O error");
    let cut = &ZONE[..ZONE.len() / 2];
    let got = message(read(&Memory::new(cut, 64), &limits));
    assert!(got.starts_with("the zone on the disk is refused: line "), "{got}");
}
