//! The store on an in-memory disk whose contents the tests damage the way
//! crashes, bad media and attackers do.

use super::*;
use crate::BlockError;
use core::cell::Cell;
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Wake;

/// A disk in memory that counts what it is asked; clones share everything.
#[derive(Clone, Default)]
struct MemDisk(Rc<Inner>);

/// Picks the write (sector, data) at which the power goes.
type Cut = Box<dyn FnMut(u64, &[u8]) -> bool>;

#[derive(Default)]
struct Inner {
    bytes: RefCell<Vec<u8>>,
    bytes_read: Cell<u64>,
    largest_read: Cell<usize>,
    writes: Cell<u64>,
    /// The power cut: a write this returns true for fails, and every one
    /// after it.
    cut: RefCell<Option<Cut>>,
    dead: Cell<bool>,
    /// Every request waits once before it completes, as a real disk does,
    /// so that tasks using the store interleave.
    slow: Cell<bool>,
}

impl MemDisk {
    fn new(sectors: usize) -> Self {
        let disk = Self::default();
        *disk.0.bytes.borrow_mut() = vec![0; sectors * SECTOR_SIZE];
        disk
    }

    fn bytes(&self) -> std::cell::RefMut<'_, Vec<u8>> {
        self.0.bytes.borrow_mut()
    }

    fn sector(&self, sector: u64) -> Vec<u8> {
        let at = sector as usize * SECTOR_SIZE;
        self.0.bytes.borrow()[at..at + SECTOR_SIZE].to_vec()
    }

    /// Cuts the power at the first write `when` picks.
    fn cut_when(&self, when: impl FnMut(u64, &[u8]) -> bool + 'static) {
        *self.0.cut.borrow_mut() = Some(Box::new(when));
    }

    /// From now on each request waits once (see `Inner::slow`), or not.
    fn set_slow(&self, slow: bool) {
        self.0.slow.set(slow);
    }

    async fn latency(&self) {
        if self.0.slow.get() {
            concurrency::yield_now().await;
        }
    }

    /// The machine boots again: the disk works, with what it holds.
    fn reboot(&self) {
        *self.0.cut.borrow_mut() = None;
        self.0.dead.set(false);
    }
}

impl BlockDevice for MemDisk {
    fn sector_size(&self) -> usize {
        SECTOR_SIZE
    }
    fn sectors(&self) -> u64 {
        (self.0.bytes.borrow().len() / SECTOR_SIZE) as u64
    }
    async fn read(&self, sector: u64, mut buf: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        self.latency().await;
        let range = sector as usize * SECTOR_SIZE..sector as usize * SECTOR_SIZE + buf.len();
        buf.copy_from_slice(self.0.bytes.borrow().get(range).ok_or(BlockError::Io)?);
        self.0.bytes_read.set(self.0.bytes_read.get() + buf.len() as u64);
        self.0.largest_read.set(self.0.largest_read.get().max(buf.len()));
        Ok(buf)
    }
    async fn write(&self, sector: u64, data: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        self.latency().await;
        let cut = self.0.cut.borrow_mut().as_mut().is_some_and(|cut| cut(sector, &data));
        if cut || self.0.dead.get() {
            self.0.dead.set(true);
            return Err(BlockError::Io);
        }
        self.0.writes.set(self.0.writes.get() + 1);
        let at = sector as usize * SECTOR_SIZE;
        self.bytes().get_mut(at..at + data.len()).ok_or(BlockError::Io)?.copy_from_slice(&data);
        Ok(data)
    }
    async fn flush(&self) -> Result<(), BlockError> {
        self.latency().await;
        if self.0.dead.get() { Err(BlockError::Io) } else { Ok(()) }
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

fn all_keys(store: &Store<MemDisk>) -> Vec<Vec<u8>> {
    store.keys_after(None, usize::MAX)
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
    assert_eq!(all_keys(&again), vec![b"a".to_vec()]);
    assert_eq!(again.len(), 1);
}

#[test]
fn a_torn_last_record_is_discarded_and_the_rest_kept() {
    let disk = MemDisk::new(256);
    let store = open(&disk);
    run(store.put(b"kept", b"yes")).unwrap();
    let tail = store.state.borrow().tail as usize * SECTOR_SIZE;
    run(store.put(b"torn", &[9; 1500])).unwrap();
    // The crash: only the first sector of the last record reached the disk.
    disk.bytes()[tail + SECTOR_SIZE..tail + 4 * SECTOR_SIZE].fill(0xee);
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
    let damaged = store.state.borrow().tail as usize * SECTOR_SIZE;
    run(store.put(b"second", b"2")).unwrap();
    run(store.put(b"third", b"3")).unwrap();
    disk.bytes()[damaged + 32 + 2] ^= 0x40; // a bit of "second"'s key, after the 32-byte header
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
    for b in disk.bytes().iter_mut() {
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
    disk.bytes().truncate(200 * SECTOR_SIZE);
    let truncated = open(&disk);
    assert_eq!(truncated.recovery().resized_from, Some(256 * SECTOR_SIZE as u64));
    assert_eq!(get(&truncated, "k").as_deref(), Some(&b"v"[..]));
    // Cut inside the live half: what is left is still read, nothing panics.
    disk.bytes().truncate(2 * SECTOR_SIZE);
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
    disk.bytes()[other + SECTOR_SIZE..other + SECTOR_SIZE + copy.len()].copy_from_slice(&copy);
    assert_eq!(get(&open(&disk), "counter"), Some(vec![39; 100]));
    let too_big = vec![0; 40 * SECTOR_SIZE];
    assert_eq!(run(again.put(b"big", &too_big)), Err(StoreError::Full));
    assert_eq!(run(again.put(b"", b"x")), Err(StoreError::BadKey));
}

/// F1: a value shaped like records, placed where sectors start, deleted
/// and left behind by compactions, must never come back as records.
#[test]
fn record_shaped_values_are_never_taken_for_records() {
    let disk = MemDisk::new(64);
    let store = open(&disk);
    run(store.put(b"victim", b"original")).unwrap();
    // Forged sectors for every generation the next compactions may use:
    // overwrite the victim, delete it, and one with the last sequence.
    let generation = store.state.borrow().generation;
    let mut forged = Vec::new();
    for g in generation..generation + 8 {
        forged.extend(record::encode(g, 1 << 40, Op::Put, b"victim", b"HACKED"));
        forged.extend(record::encode(g, (1 << 40) + 1, Op::Put, b"forged", b"x"));
        forged.extend(record::encode(g, u64::MAX, Op::Delete, b"victim", b""));
    }
    // Aligned for a plain log (value after a 32-byte header and the key)
    // and for this format's sectors (payload after a 4-byte tag).
    let key = b"attacker";
    for lead in [SECTOR_SIZE - 32 - key.len(), SECTOR_SIZE - 32 - key.len() + 4] {
        let mut value = vec![0x55; lead];
        value.extend_from_slice(&forged[..forged.len().min(12 * SECTOR_SIZE - lead)]);
        run(store.put(key, &value)).unwrap();
        run(store.delete(key)).unwrap();
        // Boot after every compaction, before filler overwrites what the
        // old half still holds.
        for i in 0..100u32 {
            let generation = store.state.borrow().generation;
            run(store.put(b"filler", &i.to_le_bytes().repeat(50))).unwrap();
            if store.state.borrow().generation != generation {
                let again = open(&disk);
                assert_eq!(get(&again, "victim").as_deref(), Some(&b"original"[..]));
                assert_eq!(all_keys(&again), vec![b"filler".to_vec(), b"victim".to_vec()]);
            }
        }
        assert!(store.state.borrow().generation > generation + 2, "compactions ran");
        run(store.put(b"later", b"kept")).unwrap();
        assert_eq!(get(&open(&disk), "later").as_deref(), Some(&b"kept"[..]));
        run(store.delete(b"later")).unwrap();
    }
}

/// F1/F3: a record with the largest sequence (a crafted disk) must not
/// stop later writes from counting.
#[test]
fn the_largest_sequence_does_not_disable_later_writes() {
    let disk = MemDisk::new(64);
    let store = open(&disk);
    run(store.put(b"a", b"1")).unwrap();
    let (tail, generation) = (store.state.borrow().tail, store.state.borrow().generation);
    let crafted = record::encode(generation, u64::MAX, Op::Put, b"b", b"2");
    let at = tail as usize * SECTOR_SIZE;
    disk.bytes()[at..at + SECTOR_SIZE].copy_from_slice(&crafted);
    let again = open(&disk);
    assert_eq!(get(&again, "b").as_deref(), Some(&b"2"[..]));
    run(again.put(b"c", b"3")).unwrap();
    let after = open(&disk);
    assert_eq!(get(&after, "c").as_deref(), Some(&b"3"[..]), "an acknowledged write survives");
    assert_eq!(get(&after, "a").as_deref(), Some(&b"1"[..]));
}

/// F2, as the issue tells it: a compaction cut before its header, a
/// reboot, deletes, the next compaction, a reboot.
#[test]
fn deleted_keys_stay_deleted_after_an_aborted_compaction() {
    let disk = MemDisk::new(64); // 31 record sectors per half
    let store = open(&disk);
    let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).chain(["zdoomed".into()]).collect();
    for key in &keys {
        run(store.put(key.as_bytes(), b"v")).unwrap();
    }
    for i in 0..13u8 {
        run(store.put(b"k0", &[i])).unwrap(); // 24 of 31 sectors used
    }
    // The power goes when the compaction would mark its copy complete.
    let other = (1 - store.state.borrow().half) * 32;
    disk.cut_when(move |sector, data| {
        sector == other && matches!(half::parse(data), Parsed::Store(h) if h.state == half::State::Complete)
    });
    assert!(run(store.put(b"big", &[1; 3800])).is_err(), "8 sectors do not fit in 7: compaction, cut");
    disk.reboot();
    let store = open(&disk);
    for key in &keys[5..] {
        assert!(run(store.delete(key.as_bytes())).unwrap()); // 6 sectors: no compaction yet
    }
    assert_eq!(store.state.borrow().half, 1 - other / 32);
    // The next compaction, into the half the aborted one used.
    run(store.put(b"k0", &[2; 600])).unwrap();
    assert_eq!(store.state.borrow().half, other / 32);
    let again = open(&disk);
    assert_eq!(get(&again, "zdoomed"), None, "a deleted key came back");
    let expected: Vec<Vec<u8>> = keys[..5].iter().map(|k| k.as_bytes().to_vec()).collect();
    assert_eq!(all_keys(&again), expected);
}

/// F3: header fields that would overflow or mislead are not a store.
#[test]
fn crafted_headers_are_refused_or_handled_without_overflow() {
    let disk = MemDisk::new(64);
    for half_bytes in [u64::MAX, u64::MAX - 511, 1000, 0, 512] {
        disk.bytes()[..SECTOR_SIZE].copy_from_slice(&half::encode_raw(2, 1, half_bytes));
        assert_eq!(run(Store::open(disk.clone())).err(), Some(StoreError::NotAStore), "half_bytes {half_bytes}");
    }
    // The last generation: compaction refuses instead of wrapping.
    let last = Half { state: half::State::Complete, generation: u64::MAX, sectors: 32 };
    disk.bytes()[..SECTOR_SIZE].copy_from_slice(&half::encode(last));
    let store = open(&disk);
    let mut result = Ok(());
    for i in 0..40u8 {
        result = run(store.put(b"k", &[i; 100]));
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(StoreError::Corrupt));
    assert_eq!(get(&store, "k").map(|v| v.len()), Some(100));
}

/// F4: a fake record header in every sector, each claiming the rest of
/// the half: opening reads each sector once and never a record's worth
/// at a time.
#[test]
fn recovery_reads_each_sector_once_whatever_the_disk_claims() {
    let sectors = 2048; // 1 MiB
    let disk = MemDisk::new(sectors);
    drop(open(&disk));
    let half_sectors = sectors as u64 / 2;
    for s in 1..half_sectors {
        let value_len = ((half_sectors - s - 1) * 508).max(1) as usize;
        let mut fake = record::encode(1, s, Op::Put, b"k", b"");
        fake[24..28].copy_from_slice(&(value_len as u32).to_le_bytes());
        let at = s as usize * SECTOR_SIZE;
        disk.bytes()[at..at + SECTOR_SIZE].copy_from_slice(&fake[..SECTOR_SIZE]);
    }
    disk.0.bytes_read.set(0);
    let store = open(&disk);
    let image = (sectors * SECTOR_SIZE) as u64;
    assert!(disk.0.bytes_read.get() <= image, "read {} bytes of a {image}-byte image", disk.0.bytes_read.get());
    assert!(disk.0.largest_read.get() <= 128 * 1024);
    assert_eq!(store.len(), 0);
    assert!(store.recovery().torn_tail);
}

/// F5: the index has a budget; reaching it is a clear error, freeing
/// keys makes room, and a store that opened opens again in that budget.
#[test]
fn the_index_stays_within_its_budget() {
    let disk = MemDisk::new(2048);
    let limits = Limits { max_value: 4096, index_bytes: 10 * Limits::key_cost(100) };
    let store = run(Store::open_with(disk.clone(), limits)).unwrap();
    let key = |i: u8| [i; 100];
    for i in 0..10 {
        run(store.put(&key(i), b"v")).unwrap();
    }
    let full = StoreError::IndexFull { budget: limits.index_bytes };
    assert_eq!(run(store.put(&key(10), b"v")), Err(full));
    run(store.put(&key(3), b"overwrite is fine")).unwrap();
    assert!(run(store.delete(&key(0))).unwrap());
    run(store.put(&key(10), b"v")).unwrap();
    assert_eq!(run(store.put(b"x", &[0; 4097])), Err(StoreError::ValueTooBig { max: 4096 }));
    let again = run(Store::open_with(disk.clone(), limits)).unwrap();
    assert_eq!(again.len(), 10);
    // Paged listing.
    let page = again.keys_after(None, 4);
    assert_eq!(page, (1..5).map(|i| key(i).to_vec()).collect::<Vec<_>>());
    assert_eq!(again.keys_after(Some(&key(4)), 100).len(), 6);
    // A smaller budget refuses to open rather than exhaust memory.
    let small = Limits { index_bytes: 5 * Limits::key_cost(100), ..limits };
    assert_eq!(run(Store::open_with(disk, small)).err(), Some(StoreError::IndexFull { budget: small.index_bytes }));
}

/// F6: a put that cannot fit even after compaction costs no I/O.
#[test]
fn a_full_store_refuses_without_compacting() {
    let disk = MemDisk::new(64);
    let store = open(&disk);
    for i in 0..30u8 {
        run(store.put(&[b'k', i], &[i; 100])).unwrap(); // 30 of 31 sectors live
    }
    let writes = disk.0.writes.get();
    for _ in 0..10 {
        assert_eq!(run(store.put(b"more", &[0; 1000])), Err(StoreError::Full));
    }
    assert_eq!(disk.0.writes.get(), writes, "rejected puts wrote nothing");
    // What fits once the log is compacted still goes in, and deletes always can.
    run(store.put(b"last", b"x")).unwrap();
    for i in 0..30u8 {
        assert!(run(store.delete(&[b'k', i])).unwrap());
    }
    assert_eq!(all_keys(&open(&disk)), vec![b"last".to_vec()]);
}

#[test]
fn an_old_format_disk_is_refused() {
    let disk = MemDisk::new(64);
    let mut v1 = vec![0; SECTOR_SIZE];
    v1[..8].copy_from_slice(b"ukkvhalf");
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    v1[12..20].copy_from_slice(&(32 * SECTOR_SIZE as u64).to_le_bytes());
    let crc = crc32fast::hash(&v1[..20]);
    v1[20..24].copy_from_slice(&crc.to_le_bytes());
    disk.bytes()[..SECTOR_SIZE].copy_from_slice(&v1);
    let error = run(Store::open(disk.clone())).err();
    assert_eq!(error, Some(StoreError::UnsupportedFormat { version: 1 }));
    assert_eq!(disk.sector(0), v1, "left untouched");
}

#[test]
fn formatting_a_used_disk_leaves_nothing_of_the_old_store() {
    let disk = MemDisk::new(64);
    let store = open(&disk);
    run(store.put(b"old", b"data")).unwrap();
    drop(run(Store::format(disk.clone())).unwrap());
    assert_eq!(all_keys(&open(&disk)), Vec::<Vec<u8>>::new());
    // Headers lost, records left: the store formatted on top of them
    // never takes them for its own.
    let store = open(&disk);
    run(store.put(b"old", b"data")).unwrap();
    run(store.put(b"older", b"data")).unwrap();
    disk.bytes()[..SECTOR_SIZE].fill(0);
    let store = open(&disk);
    assert!(store.recovery().formatted);
    run(store.put(b"new", b"x")).unwrap();
    assert_eq!(all_keys(&open(&disk)), vec![b"new".to_vec()]);
}

mod concurrency;
