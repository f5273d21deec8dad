//! aarch64 images on QEMU's `virt` (TCG): the runner picks
//! `qemu-system-aarch64` from the ELF's machine field; the guest boots from
//! the device tree, reports its status on the console before PSCI powers
//! it off, faults with a readable report the runner symbolizes, and serves
//! curl over virtio-net and keeps `kv`'s writes on virtio-blk, both on
//! virt's virtio-mmio transports. The in-guest suites (tests/*.rs) run for
//! aarch64 in the README's test command too (`cargo xtask test`).

mod common;

use common::guest::{Guest, free_port, run, text};
use common::{AARCH64, boot, examples, qemu_words};

fn boot_aarch64(name: &str, args: &[&str]) -> common::Run {
    boot(&examples(AARCH64).join(name), args)
}

#[test]
fn the_runner_boots_aarch64_images_on_virt_with_no_exit_device() {
    let words = qemu_words(&examples(AARCH64).join("kv"), &["--disk", "/dev/null"]);
    assert!(words[0].ends_with("qemu-system-aarch64"), "{words:?}");
    let machine = &words[words.iter().position(|w| w == "-M").unwrap() + 1];
    assert_eq!(machine, "virt,gic-version=3");
    assert!(words.windows(2).any(|w| w == ["-cpu", "max"]), "{words:?}");
    assert!(words.iter().any(|w| w.starts_with("virtio-net-device")) && !words.iter().any(|w| w.contains("pci")));
    assert!(!words.iter().any(|w| w.contains("isa-debug-exit")), "{words:?}");
    let q35 = boot_aarch64("hello", &["--machine", "q35"]);
    assert!(q35.status == 2 && q35.stderr.contains("aarch64 images boot on QEMU's virt"), "{}", q35.stderr);
    let snapshot = boot_aarch64("http", &["--snapshot", "/nonexistent/snapshot"]);
    assert!(snapshot.status == 2 && snapshot.stderr.contains("x86_64 images only"), "{}", snapshot.stderr);
}

#[test]
fn statuses_come_back_through_the_console() {
    let hello = boot_aarch64("hello", &["log=debug"]);
    hello.assert(0, &["Hello from a unikernel! (cmdline: \"log=debug\"", "exit status 0 (no exit device"]);
    boot_aarch64("crash", &["panic"]).assert(101, &["deliberate panic"]);
    boot_aarch64("crash", &["error"]).assert(1, &["deliberate error"]);
}

#[test]
fn faults_are_reported_decoded_and_symbolized() {
    let cases = [
        ("write-rodata", "(write to a read-only page)"),
        ("write-text", "(write to a read-only page)"),
        ("exec-stack", "(instruction fetch from a non-executable page)"),
        ("stack-overflow", "(stack overflow: guard page below the main stack)"),
    ];
    for (mode, needle) in cases {
        boot_aarch64("crash", &[mode]).assert(102, &["*** CPU exception: ", needle, "exit status 102"]);
    }
    // The runner names the faulting function and, through the frame
    // records, the callers up to main.
    boot_aarch64("crash", &["null"]).assert(
        102,
        &[
            "data abort (synchronous exception, ESR 0x96",
            "far 0x0000000000000000 (null pointer dereference)",
            "\n    in ",
            "    called from 0x",
            "      crash::__unikernel_user_main+",
        ],
    );
    boot_aarch64("crash", &["udf"]).assert(102, &["undefined instruction", "in crash::__unikernel_user_main"]);
}

#[test]
fn a_panicking_test_restarts_on_a_fresh_stack_and_the_rest_run() {
    boot_aarch64("failing_tests", &[]).assert(
        1,
        &["test c_panics ... FAILED\npanicked at", "test d_runs_after_a_panic ... ok", "3 passed, 5 failed"],
    );
}

#[test]
fn timers_and_the_wall_clock_work() {
    let timers = boot_aarch64("timers", &[]);
    timers.assert(0, &["wall clock 20"]);
}

#[test]
fn entropy_comes_from_rndr_and_is_refused_without_it() {
    boot_aarch64("random", &[]).assert(0, &["random (RdRand)"]);
    // A CPU without FEAT_RNG (QEMU's last -cpu wins): refused, not weak.
    let old = boot_aarch64("random", &["--qemu-arg", "-cpu", "--qemu-arg", "cortex-a57"]);
    old.assert(1, &["this CPU has no RDRAND (x86_64) or RNDR (aarch64)"]);
}

#[test]
fn http_and_kv_serve_curl_on_virtio_mmio() {
    let port = free_port();
    let forward = format!("tcp:{port}:80");
    let mut http = Guest::start_on(AARCH64, &[], "http", &["--forward", &forward]);
    http.wait_for("http: serving on");
    let page = run("curl", &["-s", "--max-time", "60", &format!("http://127.0.0.1:{port}/")]);
    assert!(String::from_utf8_lossy(&page.stdout).contains("Hello from a unikernel"), "{}", text(&page));
    http.stop();

    let disk = std::env::temp_dir().join(format!("unikernel-aarch64-kv-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&disk);
    let disk_arg = disk.display().to_string();
    let args = ["--forward", &forward, "--disk", &disk_arg, "--disk-size", "1M"];
    let url = format!("http://127.0.0.1:{port}/kv/arm");
    let mut kv = Guest::start_on(AARCH64, &[], "kv", &args);
    kv.wait_for("kv: serving on");
    let put = run("curl", &["-s", "--max-time", "60", "-X", "PUT", "--data-binary", "on virt", &url]);
    assert!(put.status.success(), "{}", text(&put));
    kv.stop();
    // A second boot replays the log from the disk.
    let mut kv = Guest::start_on(AARCH64, &[], "kv", &args);
    kv.wait_for("kv: serving on");
    let get = run("curl", &["-s", "--max-time", "60", &url]);
    assert_eq!(String::from_utf8_lossy(&get.stdout), "on virt", "{}", text(&get));
    kv.stop();
    let _ = std::fs::remove_file(&disk);
}

#[test]
fn missing_qemu_names_debians_arm_package() {
    common::assert_missing_qemu_is_named(AARCH64, "qemu-system-aarch64", "qemu-system-arm");
}
