//! The store on an in-memory disk whose contents the tests damage the way
//! crashes and bad media do.

use super::*;
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::rc::Rc;

/// A disk in memory; clones share the bytes.
#[derive(Clone)]
struct MemDisk(Rc<RefCell<Vec<u8>>>);

impl MemDisk {
    fn new(sectors: usize) -> Self {
        Self(Rc::new(RefCell::new(vec![0; sectors * SECTOR_SIZE])))
    }
}

impl BlockDevice for MemDisk {
    fn sector_size(&self) -> usize {
        SECTOR_SIZE
    }
    fn sectors(&self) -> u64 {
        (self.0.borrow().len() / SECTOR_SIZE) as u64
    }
    async fn read(&self, sector: u64, mut buf: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        let range = sector as usize * SECTOR_SIZE..sector as usize * SECTOR_SIZE + buf.len();
        buf.copy_from_slice(self.0.borrow().get(range).ok_or(BlockError::Io)?);
        Ok(buf)
    }
    async fn write(&self, sector: u64, data: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        let at = sector as usize * SECTOR_SIZE;
        self.0.borrow_mut().get_mut(at..at + data.len()).ok_or(BlockError::Io)?.copy_from_slice(&data);
        Ok(data)
    }
    async fn flush(&self) -> Result<(), BlockError> {
        Ok(())
    }
}

/// Runs a future that never waits (the memory disk is always ready).
fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the memory disk never waits"),
    }
}

fn open(disk: &MemDisk) -> Store<MemDisk> {
    run(Store::open(disk.clone())).expect("opens")
}

fn get(store: &Store<MemDisk>, key: &str) -> Option<Vec<u8>> {
    run(store.get(key.as_bytes())).unwrap()
}

#[test]
fn an_empty_disk_is_formatted_and_writes_survive_reopening() {
    let disk = MemDisk::new(256);
    let store = open(&disk);
    assert!(store.recovery().formatted);
    run(store.put(b"a", b"1")).unwrap();
    run(store.put(b"b", &[7; 2000])).unwrap();
    run(store.put(b"a", b"2")).unwrap();
    assert!(run(store.delete(b"b")).unwrap());
    assert!(!run(store.delete(b"b")).unwrap());
    let again = open(&disk);
    assert_eq!(again.recovery(), Recovery { records: 4, ..Recovery::default() });
    assert_eq!(get(&again, "a").as_deref(), Some(&b"2"[..]));
    assert_eq!(get(&again, "b"), None);
    assert_eq!(again.keys(), vec![b"a".to_vec()]);
}

#[test]
fn a_torn_last_record_is_discarded_and_the_rest_kept() {
    let disk = MemDisk::new(256);
    let store = open(&disk);
    run(store.put(b"kept", b"yes")).unwrap();
    let tail = store.state.borrow().tail as usize;
    run(store.put(b"torn", &[9; 1500])).unwrap();
    // The crash: only the first sector of the last record reached the disk.
    disk.0.borrow_mut()[tail + SECTOR_SIZE..tail + 4 * SECTOR_SIZE].fill(0xee);
    let again = open(&disk);
    assert!(again.recovery().torn_tail);
    assert_eq!(get(&again, "kept").as_deref(), Some(&b"yes"[..]));
    assert_eq!(get(&again, "torn"), None);
    // Writing goes on where the torn record was.
    run(again.put(b"after", b"crash")).unwrap();
    assert_eq!(get(&open(&disk), "after").as_deref(), Some(&b"crash"[..]));
}

#[test]
fn a_damaged_record_in_the_middle_is_reported_and_later_ones_kept() {
    let disk = MemDisk::new(256);
    let store = open(&disk);
    run(store.put(b"first", b"1")).unwrap();
    let damaged = store.state.borrow().tail as usize;
    run(store.put(b"second", b"2")).unwrap();
    run(store.put(b"third", b"3")).unwrap();
    disk.0.borrow_mut()[damaged + HEADER + 2] ^= 0x40; // a bit of "second"'s key
    let again = open(&disk);
    assert_eq!(again.recovery().damaged_bytes, SECTOR_SIZE as u64);
    assert_eq!(again.recovery().records, 2);
    assert_eq!(get(&again, "first").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&again, "second"), None);
    assert_eq!(get(&again, "third").as_deref(), Some(&b"3"[..]));
}

#[test]
fn random_bytes_are_refused_and_a_truncated_image_keeps_what_is_left() {
    let disk = MemDisk::new(256);
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for b in disk.0.borrow_mut().iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    assert_eq!(run(Store::open(disk.clone())).err(), Some(StoreError::NotAStore));
    let store = run(Store::format(disk.clone())).unwrap();
    run(store.put(b"k", b"v")).unwrap();
    assert_eq!(get(&open(&disk), "k").as_deref(), Some(&b"v"[..]));
    // A truncated image: the live half survives, so its data does.
    disk.0.borrow_mut().truncate(200 * SECTOR_SIZE);
    let truncated = open(&disk);
    assert_eq!(truncated.recovery().resized_from, Some(256 * SECTOR_SIZE as u64));
    assert_eq!(get(&truncated, "k").as_deref(), Some(&b"v"[..]));
    // Cut inside the live half: what is left is still read, nothing panics.
    disk.0.borrow_mut().truncate(2 * SECTOR_SIZE);
    let stub = open(&disk);
    assert_eq!(get(&stub, "k").as_deref(), Some(&b"v"[..]));
    assert_eq!(run(stub.put(b"more", &[1; 600])), Err(StoreError::Full));
}

#[test]
fn compaction_keeps_live_values_and_a_crash_during_it_keeps_the_old_half() {
    let disk = MemDisk::new(64); // two halves of 32 sectors
    let store = open(&disk);
    for round in 0..40u8 {
        run(store.put(b"counter", &[round; 100])).unwrap();
        run(store.put(b"fixed", b"stays")).unwrap();
    }
    assert!(store.state.borrow().generation > 1, "40 rounds overflow a 16 KiB half");
    let again = open(&disk);
    assert_eq!(get(&again, "counter"), Some(vec![39; 100]));
    assert_eq!(get(&again, "fixed").as_deref(), Some(&b"stays"[..]));
    // A compaction that crashed before its header: the copy is ignored.
    let (half, generation) = (again.state.borrow().half, again.state.borrow().generation);
    let other = ((1 - half) * 32 * SECTOR_SIZE as u64) as usize;
    let copy = record::encode(generation + 1, 1, Op::Put, b"counter", &[200; 100]);
    disk.0.borrow_mut()[other + SECTOR_SIZE..other + SECTOR_SIZE + copy.len()].copy_from_slice(&copy);
    assert_eq!(get(&open(&disk), "counter"), Some(vec![39; 100]));
    let too_big = vec![0; 40 * SECTOR_SIZE];
    assert_eq!(run(again.put(b"big", &too_big)), Err(StoreError::Full));
    assert_eq!(run(again.put(b"", b"x")), Err(StoreError::BadKey));
}
