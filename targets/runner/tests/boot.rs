//! Every example boots in QEMU through the runner; its console output and
//! exit status are checked. The hosted builds must behave the same.

mod common;

use common::{BARE, boot, boot_example, examples, run_hosted};
use std::path::Path;

const FAULT: i32 = 102;
const PANIC: i32 = 101;

#[test]
fn hello_boots_and_sees_its_command_line() {
    let run = boot_example("hello", &["alpha", "beta=2"]);
    run.assert(0, &["Hello from a unikernel! (cmdline: \"alpha beta=2\", "]);
    // 64M of RAM minus image and stack: the heap got nearly all of it.
    let free: u64 =
        run.stdout.split(", ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).expect("free MiB");
    assert!((56..64).contains(&free), "{free} MiB free of 64M\n{}", run.stdout);
}

#[test]
fn hello_boots_on_every_machine_type() {
    for machine in ["q35", "pc"] {
        boot_example("hello", &["--machine", machine]).assert(0, &["Hello from a unikernel!"]);
    }
}

#[test]
fn memory_size_reaches_the_heap() {
    let run = boot_example("hello", &["--memory", "128M"]);
    run.assert(0, &["MiB free)"]);
    assert!(run.stdout.contains(" 12") && run.stdout.contains("MiB free"), "{}", run.stdout);
}

#[test]
fn hello_runs_in_two_mebibytes() {
    boot_example("hello", &["--memory", "2M"]).assert(0, &["Hello from a unikernel!"]);
}

/// Where the loadable segments of `image` end, in KiB, read from its ELF
/// program headers independently of the runner.
fn image_end_kib(image: &Path) -> u64 {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let data = std::fs::read(image).expect("read image");
    let elf = ElfFile64::<object::Endianness>::parse(&*data).expect("ELF");
    let endian = elf.endian();
    let loads = elf.elf_program_headers().iter().filter(|h| h.p_type(endian) == object::elf::PT_LOAD);
    loads.map(|h| h.p_paddr(endian) + h.p_memsz(endian)).max().expect("a PT_LOAD segment").div_ceil(1024)
}

/// The number just before `suffix` in `text` (e.g. `("gets 8 KiB", " KiB")` → 8).
fn number_before(text: &str, suffix: &str) -> u64 {
    let head = &text[..text.find(suffix).unwrap_or_else(|| panic!("no {suffix:?} in {text:?}"))];
    let digits = head.rsplit(|c: char| !c.is_ascii_digit()).next().unwrap_or("");
    digits.parse().unwrap_or_else(|_| panic!("no number before {suffix:?} in {text:?}"))
}

#[test]
fn too_little_heap_is_reported_with_numbers_that_add_up() {
    let image = examples(BARE).join("hello");
    let end = image_end_kib(&image).next_multiple_of(4);
    // RAM ending about 32 KiB after the image: the image loads, the heap is
    // short. QEMU rounds -m up to a multiple of 8 KiB.
    let memory = (end + 32).next_multiple_of(8);
    let run = boot(&image, &["--memory", &format!("{memory}K"), "--timeout", "20"]);
    run.assert(1, &["boot failed: not enough memory: "]);
    let line = run.stdout.lines().find(|l| l.contains("not enough memory")).expect("the message");
    let missing = number_before(line, " KiB missing");
    let gets = number_before(line, " KiB (");
    let heap_start = number_before(line, "–");
    let heap_end = number_before(line, " KiB, the end of RAM");
    let minimum = number_before(line, " KiB minimum");
    let image_end = number_before(line.split("the image").nth(1).expect("the image's extent"), " KiB)");
    assert_eq!((heap_start, heap_end), (end, memory), "{line}");
    assert_eq!(gets, heap_end - heap_start, "{line}");
    assert_eq!(missing, minimum - gets, "{line}");
    assert_eq!(image_end, end, "the main stack is below the image, the heap right after it: {line}");
    assert!(line.contains("--memory"), "{line}");
}

#[test]
fn memory_too_small_for_the_image_is_refused_before_boot() {
    let image = examples(BARE).join("hello");
    // A short --timeout: QEMU used to run this guest forever without a word.
    let run = boot(&image, &["--memory", "1M", "--timeout", "10"]);
    assert_eq!(run.status, 2, "runner error expected\n{}{}", run.stdout, run.stderr);
    let line = run.stderr.lines().find(|l| l.contains("hello needs at least")).expect(&run.stderr);
    assert_eq!(number_before(line, " KiB of RAM"), image_end_kib(&image), "{line}");
    assert_eq!(number_before(line, " KiB, but"), image_end_kib(&image), "{line}");
    assert!(line.contains("its image loads at 1024–") && line.contains("--memory 1M gives 1024 KiB"), "{line}");
    assert!(!run.stderr.contains("booting"), "QEMU must not start: {}", run.stderr);
}

#[test]
fn no_memory_size_from_1m_to_4m_hangs_or_fails_silently() {
    for kib in (1024..=4096).step_by(256) {
        let run = boot_example("hello", &["--memory", &format!("{kib}K"), "--timeout", "10"]);
        let told = match run.status {
            0 => run.stdout.contains("Hello from a unikernel!"),
            1 => run.stdout.contains("boot failed: not enough memory: "),
            2 => run.stderr.contains("hello needs at least"),
            _ => false,
        };
        assert!(told, "--memory {kib}K: status {}\n{}{}", run.status, run.stdout, run.stderr);
    }
}

#[test]
fn debug_log_reports_boot_cycles() {
    let run = boot_example("hello", &["log=debug"]);
    run.assert(0, &["[DEBUG", "TSC cycles from first instruction"]);
    assert!(run.stderr.lines().any(|l| l.ends_with("components: none")), "runner saw: {}", run.stderr);
}

#[test]
fn entropy_component_gives_random_numbers() {
    let run = boot_example("random", &[]);
    run.assert(0, &["random (RdRand): "]);
    // The banner names the components only, not the target's exit device.
    assert!(run.stderr.lines().any(|l| l.ends_with("components: entropy")), "runner saw: {}", run.stderr);
}

#[test]
fn entropy_refuses_to_start_without_a_hardware_source() {
    // QEMU takes the last -cpu: qemu64 has no RDRAND.
    let run = boot_example("random", &["--qemu-arg", "-cpu", "--qemu-arg", "qemu64"]);
    run.assert(1, &["component `entropy` failed to start: this CPU has no RDRAND"]);
}

#[test]
fn main_returning_err_exits_1() {
    boot_example("crash", &["error"]).assert(1, &["Error: deliberate error"]);
}

#[test]
fn panic_prints_location_and_exits_101() {
    boot_example("crash", &["panic"]).assert(PANIC, &["panicked at examples/crash.rs:", "deliberate panic"]);
}

#[test]
fn null_dereference_is_a_page_fault_report() {
    boot_example("crash", &["null"]).assert(
        FAULT,
        &[
            "*** CPU exception: page fault (#PF, vector 14)",
            "cr2 0x0000000000000000 (null pointer dereference)",
            "    in ",
            "stack: 0x",
            // The backtrace, symbolized by the runner, reaches main.
            "    called from 0x",
            "      crash::__unikernel_user_main+",
        ],
    );
}

#[test]
fn rodata_is_read_only() {
    boot_example("crash", &["write-rodata"]).assert(FAULT, &["page fault", "(write to a read-only page)"]);
}

#[test]
fn stack_overflow_hits_the_guard_page() {
    boot_example("crash", &["stack-overflow"]).assert(
        FAULT,
        &["double fault (#DF, vector 8)", "stack overflow: guard page below the main stack", "\n    in "],
    );
}

#[test]
fn invalid_opcode_is_reported_with_the_function() {
    boot_example("crash", &["ud2"])
        .assert(FAULT, &["invalid opcode (#UD, vector 6)", "in crash::__unikernel_user_main"]);
}

#[test]
fn failing_tests_are_reported_and_the_rest_still_run() {
    let run = boot_example("failing_tests", &[]);
    run.assert(
        1,
        &[
            "running 8 tests",
            "test a_passes ... ok",
            "test b_returns_an_error ... FAILED\n    error: expected failure",
            "test c_panics ... FAILED\npanicked at",
            "test d_runs_after_a_panic ... ok",
            "test e_panics_in_a_task_while_main_holds_a_resource ... FAILED\npanicked at",
            "test f_the_resource_main_held_was_dropped ... ok",
            "test y_panics_holding_a_lock ... FAILED\npanicked at",
            "a panic left 1 lock(s) held on a target that cannot unwind: the 1 remaining test(s) cannot run safely",
            "3 passed, 5 failed",
        ],
    );
}

#[test]
fn test_filter_comes_from_the_command_line() {
    let run = boot_example("failing_tests", &["d_runs"]);
    run.assert(0, &["running 1 test\n", "test d_runs_after_a_panic ... ok", "1 passed, 0 failed", "7 filtered out"]);
}

#[test]
fn timeout_stops_a_guest_with_124() {
    // The test image waits for nothing, so a zero-length budget is the only
    // way to hit the timeout deterministically: use the smallest one.
    let run = boot_example("hello", &["--timeout", "0.001"]);
    assert_eq!(run.status, 124, "{}", run.stderr);
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
}

#[test]
fn runner_rejects_a_host_binary() {
    let host = examples(common::HOST).join("hello");
    let run = boot(&host, &[]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("has no PVH entry note"), "{}", run.stderr);
}

#[test]
fn runner_prints_the_qemu_command() {
    let run = boot_example("random", &["--print-command", "--machine", "q35", "x=1"]);
    run.assert(
        0,
        &["qemu-system-x86_64 -M q35", "-device isa-debug-exit,iobase=0xf4,iosize=0x04", "-append x=1", BARE],
    );
}

#[test]
fn hosted_builds_behave_like_the_guest() {
    run_hosted("hello", &["alpha"]).assert(0, &["Hello from a unikernel! (cmdline: \"alpha\", "]);
    run_hosted("random", &[]).assert(0, &["random (RdRand): "]);
    run_hosted("crash", &["error"]).assert(1, &["Error: deliberate error"]);
    run_hosted("crash", &["panic"]).assert(PANIC, &["panicked at examples/crash.rs:", "deliberate panic"]);
    run_hosted("failing_tests", &[]).assert(
        1,
        &[
            "test c_panics ... FAILED",
            "test d_runs_after_a_panic ... ok",
            "test f_the_resource_main_held_was_dropped ... ok",
            "test z_takes_that_lock ... ok",
            "4 passed, 4 failed",
        ],
    );
}

#[test]
fn without_isa_debug_exit_the_guest_reports_its_status_and_resets() {
    use std::process::Command;
    let mut words = common::qemu_words(&examples(BARE).join("hello"), &[]);
    let device = words.iter().position(|w| w.starts_with("isa-debug-exit")).expect("runner adds isa-debug-exit");
    words.drain(device - 1..=device);
    // The reset ends QEMU by itself (the runner's `-no-reboot`): no kill.
    let out = Command::new(&words[0]).args(&words[1..]).output().unwrap();
    let console = String::from_utf8_lossy(&out.stdout);
    assert!(console.contains("Hello from a unikernel!"), "{console}");
    let last = console.lines().last().unwrap_or("");
    assert!(last.starts_with("unikernel: exit status 0 (no exit device: stopping the machine)"), "{console}");
    assert_eq!(out.status.code(), Some(0), "QEMU's own status for a reset under -no-reboot");
}

#[test]
fn missing_qemu_names_the_package_to_install() {
    common::assert_missing_qemu_is_named(BARE, "qemu-system-x86_64", "qemu-system-x86");
}

#[test]
fn timers_example_runs_its_tasks_concurrently() {
    for run in [boot_example("timers", &[]), run_hosted("timers", &[])] {
        run.assert(0, &["1 2 after ", ", wall clock 20"]);
        // The longer sleep (50 ms) is never cut short. How much later it
        // ends is the host's load, so no upper bound is asserted here: that
        // sleepers overlap is `tests/runtime.rs`'s
        // `concurrent_sleepers_wake_in_deadline_order`, by order, not time.
        let ms: f64 = run
            .stdout
            .split("after ")
            .nth(1)
            .and_then(|s| s.split("ms").next())
            .and_then(|s| s.parse().ok())
            .expect("elapsed milliseconds");
        assert!(ms >= 50.0, "took {ms} ms\n{}", run.stdout);
    }
}

/// Host CPU time (user + system) of a process, in seconds (USER_HZ = 100).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process stat");
    // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat format").1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[test]
fn a_sleeping_guest_leaves_the_host_cpu_idle() {
    use std::process::{Command, Stdio};
    use std::time::Duration;
    let words = common::qemu_words(&examples(BARE).join("idle"), &["seconds=4"]);
    let mut qemu =
        Command::new(&words[0]).args(&words[1..]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    // Past boot and calibration, measure 2 s of the guest's sleep.
    std::thread::sleep(Duration::from_millis(1000));
    let before = cpu_seconds(qemu.id());
    std::thread::sleep(Duration::from_millis(2000));
    let used = cpu_seconds(qemu.id()) - before;
    let status = qemu.wait().unwrap();
    let percent = used / 2.0 * 100.0;
    eprintln!("idle guest: QEMU used {percent:.1}% of one host core");
    assert_eq!(status.code(), Some(3), "the guest exits 0 after its sleep");
    // A busy-waiting guest would use ~100%; allow generous slack for TCG.
    assert!(percent < 25.0, "a sleeping guest used {percent:.1}% of a host core");
}
