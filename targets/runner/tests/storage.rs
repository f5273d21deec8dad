//! The `block` component against real disks: the `disk` example writes a
//! pattern through virtio-blk (microvm's virtio-mmio, and virtio-pci with
//! MSI-X on q35) or, hosted, through a file; the host then reads the raw
//! image and checks every byte.

mod common;

use common::guest::{Guest, free_port};
use common::nbd::{CachedDisk, Freeze};
use common::{HOST, boot_example, examples};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A fresh path for a disk image, removed when dropped.
struct Image(PathBuf);

impl Image {
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("unikernel-{tag}-{}.img", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Self(path)
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Byte `i` of sector `s`, as the example writes it.
fn expected(sector: usize, i: usize, seed: u8) -> u8 {
    (sector as u8).wrapping_mul(31) ^ i as u8 ^ seed
}

fn check_image(path: &Path, sectors: usize, seed: u8, size: usize) {
    let data = std::fs::read(path).expect("read the raw image");
    assert_eq!(data.len(), size, "the image keeps its size");
    for s in 0..sectors {
        for i in 0..512 {
            assert_eq!(data[s * 512 + i], expected(s, i, seed), "sector {s}, byte {i}");
        }
    }
    assert!(data[sectors * 512..].iter().all(|&b| b == 0), "nothing written past the pattern");
}

#[test]
fn written_sectors_reach_the_raw_image_on_microvm_and_q35() {
    for (machine, seed) in [("microvm", 9), ("q35", 77)] {
        let image = Image::new(machine);
        let disk = image.0.display().to_string();
        let run = boot_example(
            "disk",
            &["--machine", machine, "--disk", &disk, "--disk-size", "2M", "sectors=300", &format!("seed={seed}")],
        );
        assert!(run.stderr.contains(&format!("created disk image {disk} (2 MiB)")), "{}", run.stderr);
        run.assert(
            0,
            &[
                "disk: 4096 sectors of 512 bytes",
                "refused as expected: sectors 4096..4097 are out of range: the disk has 4096",
                &format!("disk: wrote, flushed and verified 300 sectors (seed {seed})"),
            ],
        );
        let cancelled: u32 = run
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("disk: ")?.strip_suffix(" of 100 reads cancelled in flight"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no cancellation count: {}", run.stdout));
        assert!(cancelled > 0, "{machine}: no read was ever cancelled in flight");
        check_image(&image.0, 300, seed, 2 << 20);
    }
}

#[test]
fn hosted_block_is_a_file() {
    let image = Image::new("hosted");
    std::fs::File::create(&image.0).unwrap().set_len(1 << 20).unwrap();
    let out = Command::new(examples(HOST).join("disk"))
        .args([format!("disk={}", image.0.display()), "sectors=40".into(), "seed=5".into()])
        .output()
        .expect("run hosted disk");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("verified 40 sectors (seed 5)"), "{stdout}");
    check_image(&image.0, 40, 5, 1 << 20);
}

#[test]
fn an_existing_disk_image_is_reused() {
    // The runner reuses an existing image rather than recreating it: a
    // second boot with another seed over fewer sectors leaves the rest of
    // the first pattern in place.
    let image = Image::new("reuse");
    let disk = image.0.display().to_string();
    boot_example("disk", &["--disk", &disk, "--disk-size", "1M", "sectors=20", "seed=1"]).assert(0, &["verified 20"]);
    boot_example("disk", &["--disk", &disk, "sectors=8", "seed=2"]).assert(0, &["verified 8"]);
    let data = std::fs::read(&image.0).unwrap();
    assert_eq!(data[0], expected(0, 0, 2));
    assert_eq!(data[10 * 512 + 3], expected(10, 3, 1));
    assert_eq!(data.len(), 1 << 20);
}

#[test]
fn kv_refuses_a_disk_of_random_bytes_and_formats_it_when_told() {
    let image = Image::new("kv-random");
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&image.0, &noise).unwrap();
    let disk = image.0.display().to_string();
    let run = boot_example("kv", &["--disk", &disk, "--forward", &format!("{}:80", free_port())]);
    run.assert(1, &["Error: the disk holds no store and is not empty (format it to start over)"]);
    assert_eq!(std::fs::read(&image.0).unwrap(), noise, "a refused disk is left as it was");
    let mut guest = Guest::start(&[], "kv", &["--disk", &disk, "--forward", &format!("{}:80", free_port()), "format"]);
    assert!(
        guest
            .wait_for("kv: serving on")
            .contains("kv: 0 keys; replayed 0 records, 0 damaged bytes skipped, torn tail: false, formatted: true")
    );
}

/// One keep-alive HTTP connection to the kv example.
struct Client(BufReader<TcpStream>);

impl Client {
    fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Self(BufReader::new(stream))
    }

    /// Status code and body, or `None` if the connection broke.
    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
        let head = format!("{method} {path} HTTP/1.1\r\nHost: kv\r\nContent-Length: {}\r\n\r\n", body.len());
        let stream = self.0.get_mut();
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        let mut line = String::new();
        self.0.read_line(&mut line).ok()?;
        let status = line.split(' ').nth(1)?.parse().ok()?;
        let mut len = 0;
        loop {
            line.clear();
            self.0.read_line(&mut line).ok()?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().ok()?;
            }
        }
        let mut body = vec![0; len];
        self.0.read_exact(&mut body).ok()?;
        Some((status, body))
    }
}

/// A small xorshift generator: the workload's and the cuts' choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The power-cut disk: small, so that the store compacts many times
/// between cuts.
const CUT_DISK: usize = 192 << 10;
/// Keys `k0`..: at most `KEYS` values of `MAX_VALUE_LEN` bytes stay well
/// inside half of `CUT_DISK`, so no write is refused as `Full`.
const KEYS: usize = 16;
const MAX_VALUE_LEN: u64 = 3000;
/// Concurrent clients, each with its own keys (key `k` is client `k % WRITERS`'s).
const WRITERS: usize = 2;
/// A cut at a write reaching the disk comes after fewer answered writes than this.
const CUT_WRITES: u64 = 200;

/// What a key holds: `None` when absent.
type Value = Option<Vec<u8>>;

/// One key as the clients know it: the state last acknowledged, and the
/// one an operation in flight at the cut would leave (either may be found).
#[derive(Clone, Default)]
struct KeyModel {
    acked: Value,
    in_flight: Option<Value>,
}

#[derive(Default)]
struct Counts {
    puts: u64,
    /// Bytes of the acknowledged PUTs' values.
    put_bytes: u64,
    deletes: u64,
    reads: u64,
}

/// What the clients share: the model of every key, the next write's
/// number, and what got through.
#[derive(Default)]
struct Clients {
    model: Mutex<Vec<KeyModel>>,
    version: AtomicU64,
    counts: Mutex<Counts>,
}

/// Write number `version` to key `key`: its name, then bytes of its own.
fn value_of(key: usize, version: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng((version << 8 | key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut value = format!("k{key} v{version} ").into_bytes();
    value.extend((0..len).map(|_| rng.next() as u8));
    value.truncate(len);
    value
}

/// Value sizes: empty, within one sector, and up to six sectors.
fn value_len(rng: &mut Rng) -> usize {
    (match rng.below(20) {
        0 => 0,
        1..=7 => 1 + rng.below(100),
        8..=14 => 100 + rng.below(1400),
        _ => 1500 + rng.below(MAX_VALUE_LEN - 1499),
    }) as usize
}

/// What a GET found.
fn found(reply: (u16, Vec<u8>)) -> Value {
    match reply {
        (200, value) => Some(value),
        (404, _) => None,
        (status, body) => panic!("GET answered {status}: {}", String::from_utf8_lossy(&body)),
    }
}

fn describe(value: &Value) -> String {
    match value {
        None => "absent".into(),
        Some(v) => format!("{} bytes {:?}", v.len(), String::from_utf8_lossy(&v[..v.len().min(12)])),
    }
}

/// An operation on one key.
enum Op {
    Get,
    Delete,
    Put(Vec<u8>),
}

impl Clients {
    /// Sends `op` on `key`, checks the reply against the model and updates
    /// it; `false` when the power went first (the operation stays in flight).
    fn send(&self, client: &mut Client, key: usize, op: Op) -> bool {
        let path = format!("/kv/k{key}");
        let acked = self.model.lock().unwrap()[key].acked.clone();
        let (method, after) = match op {
            Op::Get => ("GET", acked.clone()),
            Op::Delete => ("DELETE", None),
            Op::Put(value) => ("PUT", Some(value)),
        };
        if method != "GET" {
            self.model.lock().unwrap()[key].in_flight = Some(after.clone());
        }
        let body = after.as_deref().filter(|_| method == "PUT").unwrap_or_default();
        let sent = body.len() as u64;
        let Some((status, reply)) = client.request(method, &path, body) else { return false };
        match method {
            "GET" => assert_eq!(found((status, reply)), acked, "GET {path} while the guest runs"),
            "DELETE" => {
                let expected = if acked.is_some() { 200 } else { 404 };
                assert_eq!(status, expected, "DELETE {path} of a key that is {}", describe(&acked));
            }
            _ => assert_eq!(status, 200, "PUT {path} ({sent} bytes): {}", String::from_utf8_lossy(&reply)),
        }
        self.model.lock().unwrap()[key] = KeyModel { acked: after, in_flight: None };
        let mut counts = self.counts.lock().unwrap();
        match (method, status) {
            ("GET", _) => counts.reads += 1,
            ("DELETE", 200) => counts.deletes += 1,
            ("DELETE", _) => {}
            _ => (counts.puts, counts.put_bytes) = (counts.puts + 1, counts.put_bytes + sent),
        }
        true
    }

    /// The next value for `key`, `len` bytes.
    fn value(&self, key: usize, len: usize) -> Vec<u8> {
        value_of(key, self.version.fetch_add(1, Ordering::Relaxed), len)
    }
}

/// One client's random PUTs, DELETEs (`deletes` in 10 operations) and
/// GETs on its own keys until the power goes.
fn write_until_cut(port: u16, writer: usize, seed: u64, deletes: u64, clients: &Clients) {
    let mut rng = Rng(seed);
    let mut client = Client::connect(port);
    loop {
        let key = writer + WRITERS * rng.below((KEYS / WRITERS) as u64) as usize;
        let op = match rng.below(10) {
            0 => Op::Get,
            n if n <= deletes => Op::Delete,
            _ => Op::Put(clients.value(key, value_len(&mut rng))),
        };
        if !clients.send(&mut client, key, op) {
            return;
        }
    }
}

/// After a restart: every key holds its acknowledged state, or the state
/// its operation in flight at the cut would have left; the listing names
/// exactly the keys that hold a value. The found states become the model.
fn verify_after_cut(port: u16, cut: u64, model: &mut [KeyModel]) {
    let mut client = Client::connect(port);
    let (status, listing) = client.request("GET", "/kv", b"").expect("list the keys");
    assert_eq!(status, 200);
    let listed: BTreeSet<String> =
        String::from_utf8(listing).expect("keys are text").lines().map(String::from).collect();
    let names: Vec<String> = (0..model.len()).map(|k| format!("k{k}")).collect();
    let strangers: Vec<&String> = listed.iter().filter(|k| !names.contains(k)).collect();
    assert!(strangers.is_empty(), "after cut {cut}: keys nobody wrote: {strangers:?}");
    for (key, m) in model.iter_mut().enumerate() {
        let now = found(client.request("GET", &format!("/kv/{}", names[key]), b"").expect("get"));
        assert_eq!(listed.contains(&names[key]), now.is_some(), "after cut {cut}: the listing and GET k{key} disagree");
        assert!(
            now == m.acked || m.in_flight.as_ref() == Some(&now),
            "after cut {cut}: k{key} is {}; acknowledged: {}; in flight at the cut: {}",
            describe(&now),
            describe(&m.acked),
            m.in_flight.as_ref().map_or("nothing".into(), describe)
        );
        *m = KeyModel { acked: now, in_flight: None };
    }
}

/// The kv example on the power-cut disk, restarted after cut `cut` and
/// checked; its port and console.
fn restart(disk: &CachedDisk, cut: u64, clients: &Clients) -> (Guest, u16, String) {
    let port = free_port();
    let mut guest = Guest::start(&[], "kv", &["--disk", &disk.url(), "--forward", &format!("{port}:80")]);
    let console = guest.wait_for("kv: serving on");
    verify_after_cut(port, cut, &mut clients.model.lock().unwrap());
    (guest, port, console)
}

fn new_clients() -> Arc<Clients> {
    Arc::new(Clients { model: Mutex::new(vec![KeyModel::default(); KEYS]), ..Clients::default() })
}

/// Power cuts while two clients PUT and DELETE on a small disk (the store
/// compacts many times between cuts), on a disk with a write cache (NBD,
/// `common::nbd`): at each cut every write since the last flush survives
/// whole, torn or not at all. Each cut comes, at random, as a random write
/// reaches the disk, at the write after a batch of writes was flushed
/// (where a compaction commits), or at a random moment. After each restart
/// every acknowledged value is there exactly, every acknowledged delete
/// holds, no other key exists. `UNIKERNEL_KV_CUTS` sets the number of cuts
/// (default 16; bench/storage.sh runs more), `UNIKERNEL_KV_SEED` (as
/// printed) the choices; the timing still varies.
#[test]
fn kv_keeps_every_acknowledged_write_across_power_cuts() {
    let cuts = std::env::var("UNIKERNEL_KV_CUTS").ok().and_then(|c| c.parse().ok()).unwrap_or(16u64);
    let seed = std::env::var("UNIKERNEL_KV_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64)
        | 1;
    println!("kv power cuts: seed {seed:#x}");
    let mut rng = Rng(seed);
    let (disk, clients) = (CachedDisk::new(CUT_DISK), new_clients());
    let (mut frozen, mut compactions, mut torn_tails) = (0, 0, 0);
    for cut in 0..=cuts {
        let (mut guest, port, console) = restart(&disk, cut, &clients);
        torn_tails += usize::from(console.contains("torn tail: true"));
        if cut == cuts {
            break;
        }
        let freeze = match rng.below(3) {
            0 => Some(Freeze::AfterWrites(rng.below(CUT_WRITES))),
            1 => Some(Freeze::AfterBatches(rng.below(2))),
            _ => None,
        };
        if let Some(freeze) = freeze {
            disk.freeze(freeze);
        }
        // Some cycles mostly delete: the live data shrinks between compactions.
        let deletes = if rng.below(3) == 0 { 6 } else { 3 };
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (clients, seed) = (clients.clone(), rng.next());
                std::thread::spawn(move || write_until_cut(port, w, seed, deletes, &clients))
            })
            .collect();
        let limit = if freeze.is_some() { Duration::from_secs(5) } else { Duration::from_millis(100 + rng.below(900)) };
        frozen += usize::from(disk.wait_frozen(limit));
        compactions += guest.wait_for("kv: serving on").matches("kv: compacted").count();
        guest.kill();
        for writer in writers {
            writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
        disk.cut(|n| rng.below(n));
    }
    let (c, s) = (clients.counts.lock().unwrap(), disk.stats());
    println!(
        "kv power cuts: {cuts} cuts ({frozen} as a write reached the disk), {} acknowledged PUTs, {} DELETEs, {} reads, \
         {} KiB of values, {compactions} compactions logged; unflushed writes at the cuts: {} kept, {} torn, {} lost; \
         {torn_tails} boots found a torn tail; every acknowledged write and delete held (seed {seed:#x})",
        c.puts,
        c.deletes,
        c.reads,
        c.put_bytes >> 10,
        s.kept,
        s.torn,
        s.dropped
    );
    assert!(c.puts > cuts && c.deletes > 0, "too few writes got through to test anything");
    // However the store lays out its records, values of more than twice
    // the disk's size mean it reclaimed space (compacted).
    assert!(c.put_bytes > 2 * CUT_DISK as u64, "too few bytes written to make the store reclaim space");
}

/// The audit's F2 as a client sees it: same-size values until the first
/// compaction, whose copy reaches the disk but whose commit is lost in a
/// power cut; after the restart the keys last in order are deleted one by
/// one (the next compaction comes among them), then a restart: the
/// deleted keys stay deleted. With 3,000-byte values the store audited at
/// e282776 left room for five deletes before that compaction, and two of
/// the deleted keys came back from the lost copy (k8 first).
#[test]
fn kv_deleted_keys_stay_deleted_after_a_compaction_lost_its_commit() {
    let (disk, clients) = (CachedDisk::new(CUT_DISK), new_clients());
    let (guest, port, _) = restart(&disk, 0, &clients);
    disk.freeze(Freeze::AfterBatches(0));
    let writer = {
        let clients = clients.clone();
        std::thread::spawn(move || {
            let mut client = Client::connect(port);
            for key in (0..KEYS).cycle() {
                if !clients.send(&mut client, key, Op::Put(clients.value(key, 3000))) {
                    return;
                }
            }
        })
    };
    assert!(disk.wait_frozen(Duration::from_secs(60)), "no compaction in 60 s");
    guest.kill();
    writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    disk.cut(|_| 1); // every unflushed write lost: the commit
    let (guest, port, _) = restart(&disk, 1, &clients);
    let mut client = Client::connect(port);
    let mut names: Vec<usize> = (0..KEYS).collect();
    names.sort_by_key(|k| format!("k{k}"));
    for &key in names.iter().rev().take(KEYS / 2) {
        assert!(clients.send(&mut client, key, Op::Delete), "the guest stopped answering");
    }
    guest.kill();
    disk.cut(|_| 0);
    restart(&disk, 2, &clients);
}
