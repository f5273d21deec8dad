//! The host side of the guest tests: boots `guest.rs` in QEMU on a CPU
//! without RDRAND, and inspects the images: only those that name
//! `virtio_rng` hold the driver and ask the runner for the device.

use object::{Object, ObjectSection, ObjectSymbol};
use std::path::{Path, PathBuf};
use std::process::Command;
use unikernel_core::vmm::{self, Kind, virtio};

const BARE: &str = "x86_64-unknown-none";
/// QEMU's basic 64-bit CPU, which has neither RDRAND nor RDSEED.
const NO_RDRAND: &str = "-cpu qemu64";

/// Runs cargo for bare metal at the workspace root; images boot through
/// the runner on TCG, on a CPU without RDRAND. Returns success and output.
fn cargo(args: &[&str]) -> (bool, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO"))
        .args(args)
        .args(["--target", BARE])
        .current_dir(root)
        .env("UNIKERNEL_ACCEL", "tcg")
        .env("UNIKERNEL_QEMU_ARGS", NO_RDRAND)
        .output()
        .expect("run cargo");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// The bare-metal image of test target `name` of this package.
fn image(name: &str) -> Vec<u8> {
    let (ok, out) = cargo(&["test", "--no-run", "-p", "unikernel-virtio-rng", "--test", name, "--message-format=json"]);
    assert!(ok, "{out}");
    let line = out.lines().find(|l| l.contains(&format!("\"name\":\"{name}\"")) && l.contains("\"executable\":\""));
    let path = line.and_then(|l| l.split("\"executable\":\"").nth(1)?.split('"').next()).expect("the image's path");
    std::fs::read(PathBuf::from(path)).expect("read the image")
}

/// Symbols of `data` from crate `krate` (legacy mangling: length, name).
fn symbols_of(data: &[u8], krate: &str) -> Vec<String> {
    let file = object::File::parse(data).expect("ELF");
    let mangled = format!("{}{krate}", krate.len());
    file.symbols().filter_map(|s| s.name().ok().map(str::to_owned)).filter(|n| n.contains(&mangled)).collect()
}

/// The (virtio id, required) records of `data` for the runner.
fn devices(data: &[u8]) -> Vec<(u16, bool)> {
    let file = object::File::parse(data).expect("ELF");
    let records = file.section_by_name(vmm::SECTION).map(|s| vmm::parse(s.data().unwrap()).expect("records"));
    let virtio = records.unwrap_or_default().into_iter().filter(|r| r.kind == Kind::Virtio);
    virtio.map(|r| (r.device, r.is_required())).collect()
}

#[test]
fn entropy_reads_the_device_on_a_cpu_without_a_random_number_instruction() {
    let (ok, out) = cargo(&["test", "-p", "unikernel-virtio-rng", "--test", "guest"]);
    assert!(ok && out.contains("test result: ok"), "{out}");
    // The same CPU refuses the default source: the bytes above came from the device.
    let (ok, out) = cargo(&["run", "-p", "unikernel-rt", "--example", "random"]);
    assert!(!ok && out.contains("this CPU has no RDRAND"), "{out}");
}

#[test]
fn only_an_image_that_names_virtio_rng_holds_the_driver_and_asks_for_the_device() {
    let (named, unnamed) = (image("guest"), image("unnamed"));
    for krate in ["unikernel_virtio_rng", "unikernel_virtio", "virtio_drivers"] {
        assert_eq!(symbols_of(&unnamed, krate), Vec::<String>::new(), "an image without virtio_rng holds {krate}");
        assert!(!symbols_of(&named, krate).is_empty(), "the image naming virtio_rng lacks {krate}");
    }
    assert_eq!(devices(&unnamed), []);
    assert_eq!(devices(&named), [(virtio::ENTROPY, true)]);
}
