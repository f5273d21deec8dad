//! `--oci-layout`: the image as an OCI image layout for containerd + urunc.
//! No urunc, containerd or cluster runs here: the layout is checked by the
//! OCI tools Debian ships (skopeo reads and copies it, verifying every
//! digest; umoci unpacks it into a runtime bundle), the bundle is checked
//! for what urunc reads (`/urunc.json`, the annotations, the kernel), and
//! the kernel is booted with the QEMU command line urunc builds for those
//! annotations.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::guest::{free_port, run, text};
use common::{BARE, examples};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What urunc must read, as urunc's documentation names it.
const ANNOTATIONS: [(&str, &str); 4] = [
    ("com.urunc.unikernel.unikernelType", "mewz"),
    ("com.urunc.unikernel.hypervisor", "qemu"),
    ("com.urunc.unikernel.binary", "/unikernel/kernel"),
    ("com.urunc.unikernel.cmdline", ""),
];

/// A fresh directory for this test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("unikernel-oci-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Writes example `name` into the layout `dir` as `tag`; the manifest digest.
fn package(name: &str, dir: &Path, tag: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_unikernel-runner"))
        .arg(examples(BARE).join(name))
        .args(["--oci-layout", &dir.display().to_string(), "--oci-tag", tag])
        .output()
        .expect("run the runner");
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    let (reference, digest) = printed.trim().split_once(' ').expect("`oci:DIR:TAG DIGEST`");
    assert_eq!(reference, format!("oci:{}:{tag}", dir.display()));
    digest.to_string()
}

#[track_caller]
fn succeeds(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// Every file under `dir` with its bytes, sorted by path.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            match entry.file_type().unwrap().is_dir() {
                true => dirs.push(entry.path()),
                false => {
                    found.push((entry.path().strip_prefix(dir).unwrap().into(), std::fs::read(entry.path()).unwrap()))
                }
            }
        }
    }
    found.sort();
    found
}

/// Unpacks `oci:dir:tag` with umoci into a fresh bundle.
fn unpack(dir: &Path, tag: &str, name: &str) -> PathBuf {
    let bundle = scratch(name);
    succeeds(
        "umoci",
        &["unpack", "--rootless", "--image", &format!("{}:{tag}", dir.display()), &bundle.display().to_string()],
    );
    bundle
}

#[test]
fn skopeo_and_umoci_read_the_layout_and_the_bundle_holds_what_urunc_reads() {
    let dir = scratch("layout");
    let digest = package("http", &dir, "http");
    let reference = format!("oci:{}:http", dir.display());

    let inspected: Value = serde_json::from_str(&succeeds("skopeo", &["inspect", &reference])).unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());
    assert_eq!((inspected["Architecture"].as_str(), inspected["Os"].as_str()), (Some("amd64"), Some("linux")));
    let manifest: Value = serde_json::from_str(&succeeds("skopeo", &["inspect", "--raw", &reference])).unwrap();
    for (key, value) in ANNOTATIONS {
        assert_eq!(inspected["Labels"][key], value, "label {key}: {inspected}");
        assert_eq!(manifest["annotations"][key], value, "manifest annotation {key}: {manifest}");
    }
    // skopeo verifies each blob against its digest as it copies.
    let copy = scratch("copy");
    succeeds("skopeo", &["copy", "--quiet", &reference, &format!("oci:{}:copied", copy.display())]);
    let copied: Value =
        serde_json::from_str(&succeeds("skopeo", &["inspect", &format!("oci:{}:copied", copy.display())])).unwrap();
    assert_eq!(copied["Digest"], digest.as_str(), "the copy is the same image");

    let bundle = unpack(&dir, "http", "bundle");
    let kernel = std::fs::read(bundle.join("rootfs/unikernel/kernel")).expect("the kernel at the annotated path");
    assert!(kernel == std::fs::read(examples(BARE).join("http")).unwrap(), "the kernel is byte-identical");
    // urunc reads /urunc.json (containerd does not pass image annotations
    // on), every value base64-encoded.
    let urunc: Value = serde_json::from_slice(&std::fs::read(bundle.join("rootfs/urunc.json")).unwrap()).unwrap();
    for (key, value) in ANNOTATIONS {
        let encoded = urunc[key].as_str().unwrap_or_else(|| panic!("{key} in urunc.json: {urunc}"));
        assert_eq!(BASE64.decode(encoded).unwrap(), value.as_bytes(), "{key}");
    }
    let spec: Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    for (key, value) in ANNOTATIONS {
        assert_eq!(spec["annotations"][key], value, "runtime spec annotation {key}");
    }
    // Kubernetes refuses an image with no command.
    assert_eq!(spec["process"]["args"], serde_json::json!(["/unikernel/kernel"]));
    for d in [dir, copy, bundle] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn the_same_image_gives_the_same_bytes() {
    let (one, two, other) = (scratch("same-1"), scratch("same-2"), scratch("other"));
    let digest = package("hello", &one, "t");
    assert_eq!(package("hello", &two, "t"), digest);
    assert!(files(&one) == files(&two), "every file of the layout is the same");
    assert_ne!(package("http", &other, "t"), digest, "another kernel, another image");
    for d in [one, two, other] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Kills the child when dropped, so a failed assertion stops QEMU.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The QEMU command urunc (urunc-dev/urunc, `hypervisors/qemu.go` and
/// `unikernels/mewz.go`) builds for a `mewz` unikernel with a network, but
/// with TCG for `-cpu host -enable-kvm` and user networking forwarding
/// `port` for the pod's tap: the same machine, devices and kernel command
/// line.
fn urunc_qemu_line(kernel: &Path, port: u16, address: &str, gateway: &str) -> Command {
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-m", "256M", "-L", "/usr/share/qemu", "-cpu", "max", "-accel", "tcg", "-nographic", "-vga", "none"]);
    qemu.args(["--sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]);
    qemu.arg("-kernel").arg(kernel);
    qemu.args(["-device", "virtio-net-pci,netdev=net0,disable-legacy=on,disable-modern=off"]);
    qemu.args(["-netdev", &format!("user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:80")]);
    qemu.args(["-no-reboot", "-device", "isa-debug-exit,iobase=0x501,iosize=2"]);
    qemu.args(["-append", &format!("ip={address} gateway={gateway} ")]);
    qemu
}

#[test]
fn the_qemu_line_urunc_builds_boots_the_unpacked_kernel_and_it_answers() {
    let dir = scratch("boot");
    package("http", &dir, "http");
    let bundle = unpack(&dir, "http", "boot-bundle");
    let urunc: Value = serde_json::from_slice(&std::fs::read(bundle.join("rootfs/urunc.json")).unwrap()).unwrap();
    let field = |key: &str| String::from_utf8(BASE64.decode(urunc[key].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(
        (field("com.urunc.unikernel.unikernelType"), field("com.urunc.unikernel.hypervisor")),
        ("mewz".into(), "qemu".into())
    );
    let kernel = bundle.join("rootfs").join(field("com.urunc.unikernel.binary").trim_start_matches('/'));

    let port = free_port();
    let console = bundle.join("console.log");
    let log = std::fs::File::create(&console).unwrap();
    let mut qemu = urunc_qemu_line(&kernel, port, "10.0.2.15/24", "10.0.2.2");
    let _qemu =
        Killed(qemu.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("start QEMU"));
    let deadline = Instant::now() + Duration::from_secs(120);
    let read = || String::from_utf8_lossy(&std::fs::read(&console).unwrap()).into_owned();
    while !read().contains("http: serving on") {
        assert!(Instant::now() < deadline, "the guest never served:\n{}", read());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The address and the gateway both came from urunc's words.
    assert!(read().contains("10.0.2.15/24, gateway Some(10.0.2.2)"), "{}", read());
    let page = run("curl", &["-s", "--max-time", "60", &format!("http://127.0.0.1:{port}/")]);
    assert!(String::from_utf8_lossy(&page.stdout).contains("Hello from a unikernel"), "{}", text(&page));
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(bundle);
}
