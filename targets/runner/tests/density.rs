//! Density: `bench/density.sh` starts many `http` unikernels at once and
//! every one answers (a small N here, the full N in the bench), and
//! `--merge-memory` starts QEMU mergeable, without huge pages and without
//! randomized addresses, as /proc shows.

mod common;

use common::guest::{Guest, free_port, run, text};
use common::{BARE, examples, workspace};
use std::net::TcpStream;
use std::process::Command;

const INSTANCES: u16 = 20;

#[test]
fn twenty_http_unikernels_all_answer_at_once() {
    // Below the ephemeral range, apart from other runs of this test.
    let first = 23_000 + u16::try_from(std::process::id() % 400).unwrap() * INSTANCES;
    let out = Command::new(workspace().join("bench/density.sh"))
        .arg(INSTANCES.to_string())
        .env("RUNNER", env!("CARGO_BIN_EXE_unikernel-runner"))
        .env("IMAGE", examples(BARE).join("http"))
        // The debug image ends above 2 MiB, the bench's release one's RAM.
        .env("MEMORY", "4M")
        .env("PORT", first.to_string())
        .env("IDLE", "1")
        .output()
        .expect("run bench/density.sh");
    let printed = text(&out);
    assert!(out.status.success(), "bench/density.sh failed:\n{printed}");
    let last = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with(&format!("answering: {INSTANCES}/{INSTANCES}, ")), "not all answered:\n{printed}");
    // The script stopped every instance it started: their ports are closed.
    for port in first..first + INSTANCES {
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still open:\n{printed}");
    }
}

/// The QEMU process whose parent is process `pid`.
fn qemu_of(pid: u32) -> u32 {
    let entries = std::fs::read_dir("/proc").expect("read /proc");
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces, not `)`.
            let (comm, rest) = stat.rsplit_once(") ")?;
            let ppid = rest.split_whitespace().nth(1)?.parse::<u32>().ok()?;
            (comm.contains("(qemu-system") && ppid == pid).then(|| e.file_name().to_str()?.parse().ok())?
        })
        .next()
        .unwrap_or_else(|| panic!("no QEMU under runner {pid}"))
}

/// What /proc says of `qemu`'s memory.
#[derive(Debug)]
struct Settings {
    huge_pages: bool,
    merge_any: bool,
    randomized: bool,
}

fn memory_settings(qemu: u32) -> Settings {
    let proc = |file: &str| std::fs::read_to_string(format!("/proc/{qemu}/{file}")).expect("read /proc");
    let persona = u32::from_str_radix(proc("personality").trim(), 16).expect("a hex persona");
    Settings {
        huge_pages: proc("status").lines().any(|l| l.split_whitespace().eq(["THP_enabled:", "1"])),
        merge_any: proc("ksm_stat").lines().any(|l| l.trim() == "ksm_merge_any: yes"),
        randomized: persona & 0x0040000 == 0, // ADDR_NO_RANDOMIZE
    }
}

/// Whether this kernel has per-process merging (PR_SET_MEMORY_MERGE, 6.4).
fn merge_any_kernel() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("read osrelease");
    let mut numbers = release.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)) >= (6, 4)
}

fn answers(port: u16) -> bool {
    let url = format!("http://127.0.0.1:{port}/");
    text(&run("curl", &["-s", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code}", &url])) == "200"
}

/// Boots `http` with `args`, waits until it answers, and returns what /proc
/// says of its QEMU.
fn booted(args: &[&str]) -> Settings {
    let port = free_port();
    let forward = format!("{port}:80");
    let mut words = vec!["--memory", "4M", "--forward", &forward];
    words.extend(args);
    let mut guest = Guest::start(&[], "http", &words);
    guest.wait_for_stderr("listening on");
    assert!(answers(port), "the guest with {args:?} did not answer");
    memory_settings(qemu_of(guest.pid()))
}

#[test]
fn merge_memory_makes_qemu_mergeable_unrandomized_and_without_huge_pages() {
    if !merge_any_kernel() {
        let run = common::boot_example("http", &["--merge-memory"]);
        assert!(run.status == 2 && run.stderr.contains("needs Linux 6.4"), "not refused:\n{}", run.stderr);
        return;
    }
    let plain = booted(&[]);
    assert!(!plain.merge_any && plain.randomized, "a plain QEMU: {plain:?}");
    let merged = booted(&["--merge-memory"]);
    assert!(!merged.huge_pages && merged.merge_any && !merged.randomized, "with --merge-memory: {merged:?}");
}
