//! The runner builds the VMM's devices from the image's `.unikernel.vmm`
//! records: the same devices as the components asked for on every machine,
//! and a clear refusal for a record it cannot meet or a corrupt section
//! (`boundaries.rs` checks that its source names no component).

mod common;

use common::{BARE, boot, examples, qemu_words};
use object::{Object, ObjectSection};
use std::path::{Path, PathBuf};

/// The values of `flag` in `image`'s QEMU command for `machine`.
fn values(image: &Path, machine: &str, flag: &str) -> Vec<String> {
    let words = qemu_words(image, &["--machine", machine, "--disk", "/dev/null"]);
    words.windows(2).filter(|w| w[0] == flag).map(|w| w[1].clone()).collect()
}

#[test]
fn each_example_gets_the_devices_its_components_ask_for_on_every_machine() {
    let dir = examples(BARE);
    let net_pci = "virtio-net-pci,netdev=net0";
    let blk_pci = "virtio-blk-pci,drive=disk0";
    let (net_mmio, blk_mmio) = ("virtio-net-device,netdev=net0", "virtio-blk-device,drive=disk0");
    let exit = "isa-debug-exit,iobase=0xf4,iosize=0x04";
    let cases: [(&str, &str, &[&str]); 12] = [
        ("hello", "microvm", &[exit]),
        ("hello", "q35", &[exit]),
        ("hello", "pc", &[exit]),
        ("http", "microvm", &[exit, net_mmio]),
        ("http", "q35", &[exit, net_pci]),
        ("http", "pc", &[exit, net_pci]),
        ("disk", "microvm", &[exit, blk_mmio]),
        ("disk", "q35", &[exit, blk_pci]),
        ("disk", "pc", &[exit, blk_pci]),
        ("kv", "microvm", &[exit, net_mmio, blk_mmio]),
        ("kv", "q35", &[exit, net_pci, blk_pci]),
        ("kv", "pc", &[exit, net_pci, blk_pci]),
    ];
    for (example, machine, devices) in cases {
        let image = dir.join(example);
        assert_eq!(values(&image, machine, "-device"), devices, "{example} on {machine}");
        let (net, disk) = (devices.iter().any(|d| d.contains("net")), devices.iter().any(|d| d.contains("blk")));
        let netdevs = values(&image, machine, "-netdev");
        assert_eq!(netdevs.len(), usize::from(net), "{example} on {machine}: {netdevs:?}");
        assert!(netdevs.iter().all(|n| n == "user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80"), "{netdevs:?}");
        let drives = values(&image, machine, "-drive");
        assert_eq!(drives.len(), usize::from(disk), "{example} on {machine}: {drives:?}");
        // virtio-mmio in its modern version, as the drivers expect.
        let modern = machine == "microvm" && (net || disk);
        let globals = values(&image, machine, "-global");
        assert_eq!(globals, if modern { vec!["virtio-mmio.force-legacy=false"] } else { vec![] }, "{example}");
    }
}

#[test]
fn the_images_forwards_are_the_default_and_the_users_replace_them() {
    let echo = examples(BARE).join("echo");
    let both = "user,id=net0,hostfwd=tcp:127.0.0.1:7007-:7,hostfwd=udp:127.0.0.1:7007-:7";
    assert_eq!(values(&echo, "microvm", "-netdev"), [both]);
    // resolve only connects out: it declares "none", not even the default.
    assert_eq!(values(&examples(BARE).join("resolve"), "microvm", "-netdev"), ["user,id=net0"]);
    let words = qemu_words(&echo, &["--forward", "udp:9999:7"]);
    let netdev = words.windows(2).find(|w| w[0] == "-netdev").map(|w| w[1].clone());
    assert_eq!(netdev.as_deref(), Some("user,id=net0,hostfwd=udp:127.0.0.1:9999-:7"));
}

/// A copy of the `http` image with its `.unikernel.vmm` section changed by
/// `edit`, in a fresh file under the target directory.
fn edited_http(name: &str, edit: impl FnOnce(&mut [u8])) -> PathBuf {
    let mut data = std::fs::read(examples(BARE).join("http")).expect("read http");
    let range = {
        let file = object::File::parse(&*data).expect("ELF");
        let section = file.section_by_name(".unikernel.vmm").expect("records");
        let (offset, size) = section.file_range().expect("in the file");
        offset as usize..(offset + size) as usize
    };
    edit(&mut data[range]);
    let path = common::target_dir().join(format!("records-{name}-{}", std::process::id()));
    std::fs::write(&path, data).expect("write the edited image");
    path
}

/// The runner's failure on `image`: status 2 and a message on stderr.
#[track_caller]
fn refused(image: &Path) -> String {
    let run = boot(image, &["--print-command"]);
    std::fs::remove_file(image).expect("remove the edited image");
    assert_eq!(run.status, 2, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "no command for a refused image: {}", run.stdout);
    run.stderr
}

#[test]
fn a_corrupt_record_section_is_refused_with_a_clear_message() {
    let bad_magic = refused(&edited_http("magic", |s| s[64] = b'X'));
    assert!(bad_magic.contains("has a malformed .unikernel.vmm section: no record at offset 64"), "{bad_magic}");
    let version = refused(&edited_http("version", |s| s[4] = 9));
    assert!(version.contains("layout version 9, this reader knows version 1: update it"), "{version}");
    let size = refused(&edited_http("size", |s| s[6] = 12));
    assert!(size.contains("the record at offset 0 has size 12, expected"), "{size}");
    // The last record claims to be longer than what is left.
    let mut last = 0;
    let long = refused(&edited_http("long", |s| {
        last = s.len() - 64;
        s[last + 6] = 72;
    }));
    assert!(long.contains(&format!("the section ends inside the record at offset {last}")), "{long}");
}

#[test]
fn a_required_record_of_an_unknown_kind_is_refused_an_optional_one_ignored() {
    // The second record is net's virtio-net device, marked required.
    let required = refused(&edited_http("required", |s| s[64 + 8] = 42));
    assert!(
        required.contains("component `net` needs a VMM feature of record kind 42, which this unikernel-runner does not provide: update it"),
        "{required}"
    );
    let optional = edited_http("optional", |s| (s[64 + 8], s[64 + 10]) = (42, 0));
    let run = boot(&optional, &["--print-command"]);
    std::fs::remove_file(&optional).unwrap();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("ignoring a VMM feature of record kind 42, asked for by component `net`"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("virtio-net"), "the edited record asked for no device: {}", run.stdout);
}
