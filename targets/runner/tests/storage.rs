//! The `block` component against real disks: the `disk` example writes a
//! pattern through virtio-blk (microvm's virtio-mmio, and virtio-pci with
//! MSI-X on q35) or, hosted, through a file; the host then reads the raw
//! image and checks every byte.

mod common;

use common::guest::{Guest, free_port};
use common::{HOST, boot_example, examples};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
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

/// The value written under key number `i`: its own text, repeated.
fn value_of(i: u64) -> Vec<u8> {
    format!("value-{i};").into_bytes().repeat((i % 97 + 1) as usize)
}

/// A small xorshift generator: random cut times without a crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Checks the store after a restart: every acknowledged write is there and
/// intact, and everything there was written (intact, acknowledged or not).
fn verify(port: u16, attempted: u64, acknowledged: &BTreeSet<u64>) {
    let mut client = Client::connect(port);
    let (status, listing) = client.request("GET", "/kv", b"").expect("list keys");
    assert_eq!(status, 200);
    let present: BTreeSet<u64> = String::from_utf8(listing)
        .expect("keys are text")
        .lines()
        .map(|k| {
            k.strip_prefix('k').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("a key nobody wrote: {k:?}"))
        })
        .collect();
    let lost: Vec<&u64> = acknowledged.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    for &i in &present {
        assert!(i < attempted, "key k{i} was never written");
        let (status, value) = client.request("GET", &format!("/kv/k{i}"), b"").expect("get");
        assert_eq!((status, value), (200, value_of(i)), "k{i} is corrupt");
    }
}

/// Drives writes into the kv example and cuts the power (SIGKILL to QEMU)
/// at random moments; after each restart every acknowledged write must be
/// there and intact. `UNIKERNEL_KV_CUTS` sets the number of cuts (default
/// 12 here; the storage benchmark runs more).
#[test]
fn kv_keeps_every_acknowledged_write_across_power_cuts() {
    let cuts: u64 = std::env::var("UNIKERNEL_KV_CUTS").ok().and_then(|c| c.parse().ok()).unwrap_or(12);
    let image = Image::new("kv-cuts");
    let disk = image.0.display().to_string();
    let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut rng = Rng(seed);
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let mut next = 0u64;
    let mut torn_tails = 0;
    for cut in 0..=cuts {
        let port = free_port();
        let mut guest =
            Guest::start(&[], "kv", &["--disk", &disk, "--disk-size", "8M", "--forward", &format!("{port}:80")]);
        let console = guest.wait_for("kv: serving on");
        torn_tails += usize::from(console.contains("torn tail: true"));
        verify(port, next, &acknowledged.lock().unwrap());
        if cut == cuts {
            break;
        }
        // Writes until the power goes: a key is acknowledged once "200 OK" came back.
        let (first, acked) = (next, acknowledged.clone());
        let writer = std::thread::spawn(move || {
            let mut client = Client::connect(port);
            let mut i = first;
            while let Some((200, _)) = client.request("PUT", &format!("/kv/k{i}"), &value_of(i)) {
                acked.lock().unwrap().insert(i);
                i += 1;
            }
            i + 1 // the write in flight at the cut may or may not have landed
        });
        std::thread::sleep(Duration::from_millis(100 + rng.below(900)));
        guest.kill();
        next = writer.join().expect("writer");
    }
    let acked = acknowledged.lock().unwrap().len();
    println!(
        "kv power cuts: {cuts} cuts, {acked} acknowledged writes, 0 lost, {torn_tails} torn tails (seed {seed:#x})"
    );
    assert!(acked as u64 > cuts, "too few writes got through to test anything: {acked}");
}
