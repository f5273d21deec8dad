//! The host side of the guest tests: boots `guest.rs` in QEMU and reads
//! the log file the runner names, and inspects the images: only those that
//! name `virtio_console` hold the driver and ask the runner for the device.

use object::{Object, ObjectSection, ObjectSymbol};
use std::path::{Path, PathBuf};
use std::process::Command;
use unikernel_core::vmm::{self, Kind, virtio};

const BARE: &str = "x86_64-unknown-none";

/// Runs cargo for bare metal at the workspace root; images boot through
/// the runner on TCG. Returns success, standard output and error.
fn cargo(args: &[&str]) -> (bool, String, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO"))
        .args(args)
        .args(["--target", BARE])
        .current_dir(root)
        .env("UNIKERNEL_ACCEL", "tcg")
        .output()
        .expect("run cargo");
    let text = |bytes| String::from_utf8_lossy(bytes).replace('\r', "");
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

/// The bare-metal image of test target `name` of this package.
fn image(name: &str) -> Vec<u8> {
    let (ok, out, err) =
        cargo(&["test", "--no-run", "-p", "unikernel-virtio-console", "--test", name, "--message-format=json"]);
    assert!(ok, "{err}");
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

/// Where the runner said the guest's log goes.
const LOG_AT: &str = "unikernel-runner: the guest's log goes to ";

#[test]
fn records_reach_the_host_file_and_prints_stay_on_the_serial_console() {
    let (ok, console, runner) = cargo(&["test", "-p", "unikernel-virtio-console", "--test", "guest"]);
    assert!(ok && console.contains("test result: ok"), "{console}{runner}");
    let path = runner.lines().find_map(|l| l.strip_prefix(LOG_AT)).expect("the runner names the log file");
    let log = std::fs::read_to_string(path).expect("read the log file");
    let long = format!("[WARN  guest] a long record: {}\n", "0123456789".repeat(500));
    assert!(log.contains("[WARN  guest] a record for the log file\n") && log.contains(&long), "{log}");
    assert!(console.contains("a line for the console") && !console.contains("a record for the log file"));
}

#[test]
fn only_an_image_that_names_virtio_console_holds_the_driver_and_asks_for_the_device() {
    let (named, unnamed) = (image("guest"), image("unnamed"));
    for krate in ["unikernel_virtio_console", "unikernel_virtio", "virtio_drivers"] {
        assert_eq!(symbols_of(&unnamed, krate), Vec::<String>::new(), "an image without virtio_console holds {krate}");
        assert!(!symbols_of(&named, krate).is_empty(), "the image naming virtio_console lacks {krate}");
    }
    assert_eq!(devices(&unnamed), []);
    assert_eq!(devices(&named), [(virtio::CONSOLE, true)]);
}
