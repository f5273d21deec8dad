//! libvirt runs the domain the runner writes (`--print-libvirt-xml`):
//! Debian's libvirt (9.0 in bookworm) defines and starts `http` from it on
//! qemu:///system, curl gets the page through the forwarded port, and the
//! domain's console log (what `virsh console` shows) holds the guest's
//! output. The domain is destroyed and undefined at the end, also when an
//! assertion fails.

mod common;

use common::guest::{free_port, run, text};
use common::{BARE, examples};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const URI: &str = "qemu:///system";
/// How long the daemons started here stay up with nothing to do.
const DAEMON_IDLE_SECONDS: &str = "300";

fn virsh(args: &[&str]) -> Output {
    Command::new("virsh").args(["-c", URI]).args(args).output().expect("run virsh (apt-get install libvirt-clients)")
}

/// A daemon's path: sbin is often missing from a PATH.
fn sbin(program: &str) -> PathBuf {
    let installed = Path::new("/usr/sbin").join(program);
    if installed.is_file() { installed } else { program.into() }
}

/// libvirt's daemon for qemu:///system: already there (systemd starts it on
/// the first connection), or started here, as a machine without systemd
/// (a CI container) needs: virtlogd first (the consoles' logs go through
/// it), then libvirtd. Both leave by themselves once idle (`--timeout`).
fn ensure_daemon() {
    if virsh(&["version"]).status.success() {
        return;
    }
    for daemon in ["virtlogd", "libvirtd"] {
        // Another test (or person) may have started it meanwhile: its
        // failure then is the pid file's lock, and the poll below decides.
        let started = Command::new(sbin(daemon)).args(["--daemon", "--timeout", DAEMON_IDLE_SECONDS]).status();
        eprintln!("libvirt test: started {daemon}: {started:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let version = virsh(&["version"]);
        if version.status.success() {
            return;
        }
        assert!(Instant::now() < deadline, "libvirtd does not answer on {URI}:\n{}", text(&version));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A defined domain and its files and directories; destroyed, undefined
/// and removed on drop.
struct Domain {
    name: String,
    files: Vec<PathBuf>,
}

impl Drop for Domain {
    fn drop(&mut self) {
        let _ = virsh(&["destroy", &self.name]);
        let _ = virsh(&["undefine", &self.name]);
        for file in &self.files {
            let _ = if file.is_dir() { std::fs::remove_dir_all(file) } else { std::fs::remove_file(file) };
        }
    }
}

/// The runner's domain XML for example `name`.
fn domain_xml(name: &str, args: &[&str]) -> String {
    let mut runner = Command::new(env!("CARGO_BIN_EXE_unikernel-runner"));
    if std::env::var_os("UNIKERNEL_ACCEL").is_none() {
        runner.env("UNIKERNEL_ACCEL", "tcg");
    }
    let printed = runner.arg(examples(BARE).join(name)).arg("--print-libvirt-xml").args(args).output().unwrap();
    assert!(printed.status.success(), "{}", text(&printed));
    String::from_utf8(printed.stdout).expect("UTF-8 XML")
}

/// The file the domain's serial console is logged to.
fn console_log(xml: &str) -> PathBuf {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let serial = doc.descendants().find(|n| n.has_tag_name("serial")).expect("a serial console");
    let log = serial.children().find(|n| n.has_tag_name("log")).expect("logged");
    PathBuf::from(log.attribute("file").unwrap())
}

/// Waits until `log` shows `needle`, while the domain runs; returns the log.
fn wait_for(log: &Path, needle: &str, domain: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let console = std::fs::read_to_string(log).unwrap_or_default();
        if console.contains(needle) {
            return console;
        }
        let state = virsh(&["domstate", domain]);
        let running = String::from_utf8_lossy(&state.stdout).trim() == "running";
        if !running || Instant::now() > deadline {
            let qemu = std::fs::read_to_string(format!("/var/log/libvirt/qemu/{domain}.log")).unwrap_or_default();
            panic!("no {needle:?} on the console ({}):\n{console}\n--- libvirt's QEMU log\n{qemu}", text(&state));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Defines and starts example `example` from the runner's XML as domain
/// `name`; returns the domain (undone on drop) and its console log.
fn start(example: &str, name: &str, args: &[&str]) -> (Domain, PathBuf) {
    ensure_daemon();
    let xml = domain_xml(example, &[&["--libvirt-name", name][..], args].concat());
    let log = console_log(&xml);
    let file = std::env::temp_dir().join(format!("unikernel-libvirt-{}-{example}.xml", std::process::id()));
    std::fs::write(&file, &xml).unwrap();
    let domain = Domain { name: name.into(), files: vec![file.clone(), log.clone()] };
    let defined = virsh(&["define", &file.display().to_string()]);
    assert!(defined.status.success(), "{}\n{xml}", text(&defined));
    let started = virsh(&["start", name]);
    assert!(started.status.success(), "{}\n{xml}", text(&started));
    (domain, log)
}

fn curl(args: &[&str]) -> String {
    let out = run("curl", &[&["-s", "--max-time", "60"][..], args].concat());
    assert!(out.status.success(), "curl {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn libvirt_starts_http_from_the_runners_xml_and_it_answers() {
    let port = free_port();
    let name = format!("unikernel-test-http-{}-{port}", std::process::id());
    let (domain, log) = start("http", &name, &["--forward", &format!("tcp:{port}:80")]);
    let console = wait_for(&log, "http: serving on", &name);
    assert!(console.contains("net: listening on TCP port 80"), "{console}");
    assert!(curl(&[&format!("http://127.0.0.1:{port}/")]).contains("Hello from a unikernel"));
    let state = virsh(&["domstate", &name]);
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "running", "{}", text(&state));

    let xml = domain.files[0].clone();
    drop(domain);
    assert!(!virsh(&["dominfo", &name]).status.success(), "{name} is gone from libvirt");
    assert!(!log.exists() && !xml.exists());
}

/// q35's PCI devices on bus 0 (where the guest looks), and a disk path and
/// a domain name that need escaping, through libvirt's own parser.
#[test]
fn kv_on_q35_keeps_a_value_on_a_disk_whose_path_needs_escaping() {
    let port = free_port();
    let name = format!("unikernel-test-kv's-&-<{}-{port}>", std::process::id());
    let dir = std::env::temp_dir().join(format!("unikernel-libvirt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let disk = dir.join(r#"it's "a" <disk> & more.img"#);
    let disk_arg = disk.display().to_string();
    let forward = format!("tcp:{port}:80");
    let args = ["--machine", "q35", "--forward", &forward, "--disk", &disk_arg, "--disk-size", "1M"];
    let (mut domain, log) = start("kv", &name, &args);
    domain.files.push(dir);
    wait_for(&log, "kv: serving on", &name);
    let url = format!("http://127.0.0.1:{port}/kv/libvirt");
    curl(&["-X", "PUT", "--data-binary", "defined & started", &url]);
    assert_eq!(curl(&[&url]), "defined & started");
}
