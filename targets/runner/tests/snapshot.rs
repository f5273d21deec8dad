//! `--snapshot`: a guest saved once it listens, restored twice, with real
//! curl. Each restore draws its own random numbers (from the entropy
//! component and from the app's generator, which only the restore signal
//! reseeds), tells the host's time (the snapshot is seconds old by then),
//! counts one restore and serves; an on-demand boot restores too; a
//! snapshot of another image or run is refused before QEMU starts, and a
//! stream cut short fails the run with QEMU's reason.

mod common;

use common::examples;
use common::guest::{Guest, free_port, run};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SAVED: &str = "unikernel-runner: saved the guest to";
const RESTORED: &str = "unikernel-runner: restored the guest from";
const LISTENING: &str = "unikernel-runner: listening on";

/// A fresh directory for one test's snapshot.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("unikernel-snapshot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `restored`'s answer: `random=HEX token=HEX unix=SECONDS restores=N`.
#[derive(Debug)]
struct Report {
    random: String,
    token: String,
    unix: u64,
    restores: u64,
}

fn get(port: u16) -> Report {
    let out = run("curl", &["-s", "--fail", "--max-time", "60", &format!("http://127.0.0.1:{port}/")]);
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "curl failed ({}): {body}", out.status);
    let field = |name: &str| {
        let at = body.find(&format!("{name}=")).unwrap_or_else(|| panic!("no {name} in {body:?}"));
        body[at + name.len() + 1..].split_whitespace().next().unwrap().to_string()
    };
    Report {
        random: field("random"),
        token: field("token"),
        unix: field("unix").parse().unwrap(),
        restores: field("restores").parse().unwrap(),
    }
}

fn host_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Runs `image` (an example's name or a path) with `--snapshot snapshot`
/// until it listens; `wait` is the runner's line to wait for first.
fn start(image: &str, port: u16, snapshot: &Path, wait: &str, more: &[&str]) -> Guest {
    let forward = format!("{port}:80");
    let mut args = vec!["--forward", &forward, "--snapshot", snapshot.to_str().unwrap()];
    args.extend(more);
    let mut guest = Guest::start(&[], image, &args);
    guest.wait_for_stderr(wait);
    guest.wait_for_stderr(LISTENING);
    guest
}

#[test]
fn two_restores_of_one_snapshot_draw_their_own_numbers_and_tell_the_time() {
    let dir = scratch("twice");
    let snapshot = dir.join("restored.snap");
    let port = free_port();
    let first = start("restored", port, &snapshot, SAVED, &[]);
    let booted = get(port);
    assert_eq!(booted.restores, 0, "{booted:?}");
    first.stop();
    // The snapshot ages: without the RTC re-read the guest's clock would
    // lag the host's by this much, and more.
    std::thread::sleep(Duration::from_secs(5));
    let mut reports = Vec::new();
    for restore in 1..=2 {
        let guest = start("restored", port, &snapshot, RESTORED, &[]);
        let report = get(port);
        let host = host_unix();
        let (_, stderr) = guest.stop();
        assert_eq!(report.restores, 1, "restore {restore}: the guest was told once: {report:?}\n{stderr}");
        // The RTC counts whole seconds, and curl and the runner take some.
        assert!(report.unix.abs_diff(host) <= 2, "restore {restore}: guest {} vs host {host}\n{stderr}", report.unix);
        reports.push(report);
    }
    assert_ne!(reports[0].random, reports[1].random, "the entropy component repeated itself");
    assert_ne!(reports[0].token, reports[1].token, "the app's generator was not reseeded: {reports:?}");
    assert_ne!(reports[0].token, booted.token);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn each_on_demand_boot_restores_the_snapshot() {
    on_demand_boots_restore("on-demand", &[]);
}

#[test]
fn each_warm_on_demand_boot_restores_the_snapshot_once() {
    on_demand_boots_restore("warm", &["--warm"]);
}

/// Three on-demand boots with `more` options: the first takes the
/// snapshot, the two others restore it once each.
fn on_demand_boots_restore(name: &str, more: &[&str]) {
    let dir = scratch(name);
    let snapshot = dir.join("restored.snap");
    let port = free_port();
    let forward = format!("{port}:80");
    let mut args =
        vec!["--forward", &forward, "--snapshot", snapshot.to_str().unwrap(), "--on-demand", "--idle-exit", "1"];
    args.extend(more);
    let mut guest = Guest::start(&[], "restored", &args);
    guest.wait_for_stderr("on demand: listening on");
    let mut tokens = Vec::new();
    for boot in 1..=3 {
        let report = get(port);
        assert_eq!(report.restores, u64::from(boot > 1), "boot {boot}: {report:?}\n{}", guest.stderr());
        tokens.push(report.token);
        guest.wait_for_stderr(&format!("stopping the guest (boot {boot})"));
    }
    let (_, stderr) = guest.stop();
    assert_eq!(stderr.matches(SAVED).count(), 1, "{stderr}");
    assert_eq!(stderr.matches(RESTORED).count(), 2, "{stderr}");
    assert!(tokens[1] != tokens[2] && tokens[0] != tokens[1], "{tokens:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_snapshot_of_another_image_or_run_is_refused() {
    let dir = scratch("refused");
    let image = dir.join("restored");
    std::fs::copy(examples(common::BARE).join("restored"), &image).unwrap();
    let snapshot = dir.join("restored.snap");
    let port = free_port();
    start(image.to_str().unwrap(), port, &snapshot, SAVED, &[]).stop();
    let refused = |more: &[&str]| {
        let forward = format!("{port}:80");
        let mut args = vec![image.to_str().unwrap(), "--accel", "tcg", "--forward", &forward];
        args.extend(["--snapshot", snapshot.to_str().unwrap()]);
        args.extend(more);
        let out = run(env!("CARGO_BIN_EXE_unikernel-runner"), &args);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // A stream cut short: QEMU's own error, and the runner's status.
    let whole = std::fs::read(&snapshot).unwrap();
    std::fs::write(&snapshot, &whole[..whole.len() / 2]).unwrap();
    let (status, stderr) = refused(&[]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("--snapshot: restoring") && stderr.contains("load of migration failed"), "{stderr}");
    std::fs::write(&snapshot, whole).unwrap();
    let (status, stderr) = refused(&["--memory", "32M"]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("it was taken with other options"), "{stderr}");
    // One byte more past the end: the same program to QEMU, another image.
    let mut elf = std::fs::read(&image).unwrap();
    elf.push(0);
    std::fs::write(&image, elf).unwrap();
    let (status, stderr) = refused(&[]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("the image changed since it was taken; delete it to take a new one"), "{stderr}");
    assert!(!stderr.contains(RESTORED), "refused before QEMU starts: {stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
