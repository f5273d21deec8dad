//! Harnesses for the key-value store (`unikernel_storage::Store`).
//!
//! - `store_recovery`: arbitrary disk contents (raw bytes, or crafted
//!   headers and records with valid checksums, or a real store with
//!   patches) must open or be refused without a panic, reading at most
//!   twice the image; whatever opens must serve every key it lists, take
//!   writes, and open again to the same contents.
//! - `store_crash`: random puts, deletes and compactions on a small disk
//!   with a power cut after any write, where each unflushed sector is
//!   independently lost or kept; after the reboot the store must hold
//!   exactly the acknowledged operations (the one in flight either way).

use crate::Target;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use unikernel_storage::kv::raw;
use unikernel_storage::{BlockDevice, BlockError, Limits, SECTOR_SIZE, Store, StoreError};

/// The fuzz targets of this module, by the names `fuzz/Cargo.toml` gives them.
pub const TARGETS: &[Target] = &[("store_recovery", recovery), ("store_crash", crash)];

const LIMITS: Limits = Limits { max_value: 2048, index_bytes: 16 * (Limits::ENTRY_OVERHEAD + 8) };

/// Runs a future on a disk that never waits.
fn run<F: Future>(f: F) -> F::Output {
    match pin!(f).as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the memory disk never waits"),
    }
}

/// Bytes of the input, then zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A disk in memory. Writes go to the volatile contents and are listed
/// until a flush; once `cut_after` more writes have happened the power is
/// gone and every request fails.
#[derive(Clone, Default)]
struct Disk(Rc<DiskState>);

#[derive(Default)]
struct DiskState {
    volatile: RefCell<Vec<u8>>,
    durable: RefCell<Vec<u8>>,
    /// Sector writes since the last flush, in order.
    unflushed: RefCell<Vec<(usize, Vec<u8>)>>,
    cut_after: Cell<Option<u32>>,
    dead: Cell<bool>,
    bytes_read: Cell<u64>,
}

impl Disk {
    fn new(image: Vec<u8>) -> Self {
        let disk = Self::default();
        *disk.0.durable.borrow_mut() = image.clone();
        *disk.0.volatile.borrow_mut() = image;
        disk
    }

    fn len(&self) -> usize {
        self.0.volatile.borrow().len()
    }

    /// What the disk holds after the power cut: the flushed contents, and
    /// each sector written since as the input says (kept or lost).
    fn after_cut(&self, input: &mut Input) -> Vec<u8> {
        let mut image = self.0.durable.borrow().clone();
        for (sector, data) in self.0.unflushed.borrow().iter() {
            if input.u8() & 1 == 1 {
                image[sector * SECTOR_SIZE..(sector + 1) * SECTOR_SIZE].copy_from_slice(data);
            }
        }
        image
    }

    fn range(&self, sector: u64, len: usize) -> Result<std::ops::Range<usize>, BlockError> {
        let start = usize::try_from(sector).ok().and_then(|s| s.checked_mul(SECTOR_SIZE));
        match start.and_then(|s| Some(s..s.checked_add(len)?)) {
            Some(r) if r.end <= self.len() && len.is_multiple_of(SECTOR_SIZE) => Ok(r),
            _ => Err(BlockError::OutOfRange { sector, count: (len / SECTOR_SIZE) as u64, sectors: self.sectors() }),
        }
    }
}

impl BlockDevice for Disk {
    fn sector_size(&self) -> usize {
        SECTOR_SIZE
    }

    fn sectors(&self) -> u64 {
        (self.len() / SECTOR_SIZE) as u64
    }

    async fn read(&self, sector: u64, mut buf: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        if self.0.dead.get() {
            return Err(BlockError::Io);
        }
        let range = self.range(sector, buf.len())?;
        buf.copy_from_slice(&self.0.volatile.borrow()[range]);
        self.0.bytes_read.set(self.0.bytes_read.get() + buf.len() as u64);
        Ok(buf)
    }

    async fn write(&self, sector: u64, data: Vec<u8>) -> Result<Vec<u8>, BlockError> {
        if self.0.dead.get() {
            return Err(BlockError::Io);
        }
        let range = self.range(sector, data.len())?;
        self.0.volatile.borrow_mut()[range.clone()].copy_from_slice(&data);
        let first = range.start / SECTOR_SIZE;
        let sectors = data.chunks(SECTOR_SIZE).enumerate().map(|(i, s)| (first + i, s.to_vec()));
        self.0.unflushed.borrow_mut().extend(sectors);
        if let Some(left) = self.0.cut_after.get() {
            self.0.cut_after.set(left.checked_sub(1));
            self.0.dead.set(left == 0);
        }
        Ok(data)
    }

    async fn flush(&self) -> Result<(), BlockError> {
        if self.0.dead.get() {
            return Err(BlockError::Io);
        }
        self.0.durable.borrow_mut().clone_from(&self.0.volatile.borrow());
        self.0.unflushed.borrow_mut().clear();
        Ok(())
    }
}

/// Every key the store lists, with its value; each must read back.
fn contents(store: &Store<Disk>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut all = BTreeMap::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.keys_after(after.as_deref(), 3);
        let Some(last) = page.last().cloned() else { break };
        for key in page {
            let value = run(store.get(&key)).expect("a listed key reads").expect("a listed key is there");
            assert!(value.len() <= LIMITS.max_value);
            all.insert(key, value);
        }
        after = Some(last);
    }
    assert_eq!(all.len(), store.len());
    all
}

/// Builds a disk image from the input: raw bytes, crafted sectors with
/// valid checksums, or a real store with patches.
fn image(input: &mut Input) -> Vec<u8> {
    let mode = input.u8();
    let sectors = 16 + usize::from(input.u8() % 112);
    let mut image = vec![0; sectors * SECTOR_SIZE];
    match mode % 3 {
        0 => {
            let n = input.0.len().min(image.len());
            image[..n].copy_from_slice(&input.0[..n]);
            input.0 = &[];
        }
        1 => {
            while !input.is_empty() {
                let sector = usize::from(input.u8()) % sectors;
                let bytes = crafted(input, sectors);
                let at = sector * SECTOR_SIZE;
                let n = bytes.len().min(image.len() - at);
                image[at..at + n].copy_from_slice(&bytes[..n]);
            }
        }
        _ => {
            let disk = Disk::new(image);
            if let Ok(store) = run(Store::open_with(disk.clone(), LIMITS)) {
                for i in 0..input.u8() % 64 {
                    let key = [b'k', input.u8() % 8];
                    let _ = match input.u8() % 4 {
                        0 => run(store.delete(&key)).map(drop),
                        n => run(store.put(&key, &vec![i; usize::from(n) * 300])),
                    };
                }
            }
            image = disk.0.volatile.take();
            while !input.is_empty() {
                let at = usize::from(input.u16()) % image.len();
                image[at] ^= input.u8();
            }
        }
    }
    image
}

/// A header or record with fields from the input and a valid checksum.
fn crafted(input: &mut Input, sectors: usize) -> Vec<u8> {
    let wide = |input: &mut Input| match input.u8() {
        255 => u64::MAX,
        254 => u64::MAX - 1,
        n => u64::from(n % 8),
    };
    match input.u8() % 4 {
        0 => {
            let half_bytes = match input.u8() % 4 {
                0 => u64::from(input.u16()) * 512,
                1 => u64::from(input.u16()),
                2 => wide(input),
                _ => (sectors / 2 * SECTOR_SIZE) as u64,
            };
            raw::half_header(u32::from(input.u8() % 4), wide(input), half_bytes)
        }
        kind => {
            let (generation, sequence) = (wide(input), wide(input));
            let key = vec![b'k'; 1 + usize::from(input.u8() % 3)];
            let value = vec![input.u8(); usize::from(input.u16()) % 3000];
            raw::record(generation, sequence, kind == 3, &key, &value)
        }
    }
}

/// Store recovery from arbitrary disk bytes.
pub fn recovery(data: &[u8]) {
    let mut input = Input(data);
    let image = image(&mut input);
    let size = image.len() as u64;
    let disk = Disk::new(image);
    let (store, formatted) = match run(Store::open_with(disk.clone(), LIMITS)) {
        Ok(store) => (store, false),
        Err(StoreError::NotAStore | StoreError::UnsupportedFormat { .. } | StoreError::IndexFull { .. }) => {
            assert!(disk.0.bytes_read.get() <= 2 * size);
            (run(Store::format_with(disk.clone(), LIMITS)).expect("any disk of 16 sectors can be formatted"), true)
        }
        Err(e) => panic!("opening failed: {e}"),
    };
    let read = disk.0.bytes_read.get();
    assert!(read <= 3 * size, "read {read} bytes of a {size}-byte image");
    let mut model = contents(&store);
    // Writes go in (or are refused cleanly) and a reboot sees them.
    let first = model.keys().next().cloned();
    if let Some(key) = first {
        match run(store.delete(&key)) {
            Ok(found) => assert!(found && model.remove(&key).is_some()),
            Err(StoreError::Full | StoreError::Corrupt) => {}
            Err(e) => panic!("delete: {e}"),
        }
    }
    for (i, len) in [(0u8, 10), (1, 700), (2, 2048)] {
        let key = vec![b'f', i];
        let value = vec![i; len];
        match run(store.put(&key, &value)) {
            Ok(()) => drop(model.insert(key, value)),
            Err(StoreError::Full | StoreError::IndexFull { .. } | StoreError::Corrupt) => {}
            Err(e) => panic!("put: {e}"),
        }
    }
    assert_eq!(contents(&store), model);
    let again = contents(&run(Store::open_with(disk, LIMITS)).expect("a store that opened opens again"));
    if formatted {
        // Nothing of what the disk held before comes back.
        assert_eq!(again, model);
    } else {
        // Records crafted into the other half may still match a later
        // generation, but never hide an acknowledged write.
        let ours =
            |m: &BTreeMap<Vec<u8>, Vec<u8>>| m.clone().into_iter().filter(|(k, _)| k[0] == b'f').collect::<Vec<_>>();
        assert_eq!(ours(&again), ours(&model));
    }
}

/// Crash consistency: operations, a power cut, a reboot, a check.
pub fn crash(data: &[u8]) {
    let mut input = Input(data);
    let mut disk = Disk::new(vec![0; 64 * SECTOR_SIZE]);
    let mut store = run(Store::open_with(disk.clone(), LIMITS)).expect("formats");
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut counter = 0u32;
    for _cycle in 0..8 {
        if input.is_empty() {
            break;
        }
        disk.0.cut_after.set(Some(u32::from(input.u8())));
        // The operation the power cut interrupted: its key and new value.
        let mut in_flight = None;
        while !input.is_empty() && in_flight.is_none() {
            let op = input.u8();
            let key = vec![b'k', op % 6];
            counter += 1;
            let value: Vec<u8> = match op / 6 % 4 {
                0 => None,
                1 => Some(usize::from(input.u8())),
                2 => Some(usize::from(input.u8()) * 8),
                _ => Some(2048),
            }
            .map(|len| (0..len).map(|i| (counter as usize * 31 + i) as u8).collect())
            .unwrap_or_default();
            let result = match op / 6 % 4 {
                0 => run(store.delete(&key)).map(drop),
                _ => run(store.put(&key, &value)),
            };
            let new = (op / 6 % 4 != 0).then_some(value);
            match result {
                Ok(()) => drop(match new {
                    Some(value) => model.insert(key, value),
                    None => model.remove(&key),
                }),
                Err(_) if disk.0.dead.get() => in_flight = Some((key, new)),
                Err(StoreError::Full | StoreError::IndexFull { .. }) => {}
                Err(e) => panic!("operation failed: {e}"),
            }
        }
        // The power cut (or none): reboot from what the disk kept.
        disk = Disk::new(if disk.0.dead.get() { disk.after_cut(&mut input) } else { disk.0.durable.take() });
        store = run(Store::open_with(disk.clone(), LIMITS)).expect("the store opens after a power cut");
        let found = contents(&store);
        if let Some((key, new)) = in_flight {
            // Either outcome is right for the interrupted operation.
            if found.get(&key) == new.as_ref() {
                match new {
                    Some(value) => model.insert(key, value),
                    None => model.remove(&key),
                };
            }
        }
        assert_eq!(found, model, "after a power cut");
    }
}
