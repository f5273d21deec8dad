//! The `block` component against real disks: the `disk` example writes a
//! pattern through virtio-blk (microvm's virtio-mmio, and virtio-pci with
//! MSI-X on q35) or, hosted, through a file; the host then reads the raw
//! image and checks every byte.

mod common;

use common::{HOST, boot_example, examples};
use std::path::{Path, PathBuf};
use std::process::Command;

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
