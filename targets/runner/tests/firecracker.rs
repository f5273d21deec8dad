//! `--machine firecracker`: QEMU's microvm built as Firecracker builds a
//! VM: no ACPI, so the virtio-mmio devices are announced only on the kernel
//! command line (`virtio_mmio.device=512@0xfeb00e00:12`), with interrupt
//! lines from 5 as Firecracker's rather than microvm's usual 16 and up; and
//! no exit device, so the guest prints its status and resets, and the
//! runner reads the status back. `http` and `kv` serve curl there, which
//! they can only do by taking their devices and lines from the command line.

mod common;

use common::guest::{Guest, free_port, run, text};
use common::{BARE, boot_example, examples, qemu_words};

#[test]
fn the_vm_has_no_acpi_and_no_exit_device() {
    let words = qemu_words(&examples(BARE).join("kv"), &["--machine", "firecracker", "--disk", "/dev/null"]);
    let machine = &words[words.iter().position(|w| w == "-M").unwrap() + 1];
    assert!(machine.starts_with("microvm,") && machine.contains("acpi=off"), "{machine}");
    assert!(!words.iter().any(|w| w.contains("isa-debug-exit")), "{words:?}");
}

#[test]
fn the_status_comes_back_through_the_console() {
    let hello = boot_example("hello", &["--machine", "firecracker"]);
    hello.assert(0, &["Hello from a unikernel!", "unikernel: exit status 0 (no exit device"]);
    boot_example("crash", &["--machine", "firecracker", "panic"]).assert(101, &["deliberate panic"]);
    // A CPU exception: the fault handler's report, then the same exit.
    boot_example("crash", &["--machine", "firecracker", "null"]).assert(102, &["page fault", "exit status 102"]);
}

/// The line the driver found `device` on, from the guest's debug log.
fn line_of(console: &str, device: &str) -> u8 {
    let at = console.find(&format!("virtio: {device} on line ")).unwrap_or_else(|| panic!("no {device}:\n{console}"));
    let rest = &console[at + "virtio:  on line ".len() + device.len()..];
    rest.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn http_and_kv_serve_with_devices_announced_only_on_the_command_line() {
    let port = free_port();
    let forward = format!("tcp:{port}:80");
    let mut http = Guest::start(&[], "http", &["--machine", "firecracker", "--forward", &forward, "log=debug"]);
    let console = http.wait_for("http: serving on");
    assert!(console.contains("virtio_mmio.device="), "QEMU announces the device: {console}");
    assert!(line_of(&console, "Network") < 16, "Firecracker-style line: {console}");
    let page = run("curl", &["-s", "--max-time", "60", &format!("http://127.0.0.1:{port}/")]);
    assert!(String::from_utf8_lossy(&page.stdout).contains("Hello from a unikernel"), "{}", text(&page));
    http.stop();

    let disk = std::env::temp_dir().join(format!("unikernel-fc-kv-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&disk);
    let disk_arg = disk.display().to_string();
    let args =
        ["--machine", "firecracker", "--forward", &forward, "--disk", &disk_arg, "--disk-size", "1M", "log=debug"];
    let mut kv = Guest::start(&[], "kv", &args);
    let console = kv.wait_for("listening on TCP port 80");
    assert!(line_of(&console, "Block") < 16 && line_of(&console, "Network") < 16, "{console}");
    let url = format!("http://127.0.0.1:{port}/kv/firecracker");
    let put = run("curl", &["-s", "--max-time", "60", "-X", "PUT", "--data-binary", "announced", &url]);
    assert!(put.status.success(), "{}", text(&put));
    let get = run("curl", &["-s", "--max-time", "60", &url]);
    assert_eq!(String::from_utf8_lossy(&get.stdout), "announced", "{}", text(&get));
    kv.stop();
    let _ = std::fs::remove_file(&disk);
}

#[test]
fn announcements_outside_the_device_windows_are_refused_not_touched() {
    // 0x8000_0000 is unmapped (a fault if read), 0x10_0000 is the image
    // itself (RAM a driver would write to); the third is not an announcement.
    let bad = ["virtio_mmio.device=4K@0x80000000:5", "virtio_mmio.device=4K@0x00100000:6", "virtio_mmio.device=junk"];
    let disk = std::env::temp_dir().join(format!("unikernel-fc-bad-{}.img", std::process::id()));
    let disk_arg = disk.display().to_string();
    let run = boot_example("disk", &[&["--disk", &disk_arg, "--disk-size", "1M", "--"][..], &bad].concat());
    let _ = std::fs::remove_file(&disk);
    // No disk is found where none is: a clean failure, not a fault.
    run.assert(1, &["no virtio-blk device"]);
    for refused in ["announced at 0x80000000 on line 5", "announced at 0x100000 on line 6", "malformed announcement"] {
        assert!(run.stdout.contains(refused), "{refused}: {}", run.stdout);
    }
}
