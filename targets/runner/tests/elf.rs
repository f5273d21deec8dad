//! Inspects built images: a component that is not named never reaches the
//! image, the records for the runner are right, and the layout keeps
//! code, read-only data and writable data apart (W^X).

mod common;

use common::{AARCH64, BARE, examples};
use object::elf::{SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE};
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SectionFlags};
use unikernel_core::vmm::{self, Kind, virtio};
use unikernel_testing::{records, symbols_of, virtio_devices};

fn read(name: &str) -> Vec<u8> {
    read_for(BARE, name)
}

fn read_for(target: &'static str, name: &str) -> Vec<u8> {
    std::fs::read(examples(target).join(name)).expect("read image")
}

/// The bare-metal targets: what holds for images holds on both.
const TARGETS: [&str; 2] = [BARE, AARCH64];

/// The requesters of `image`'s records of `kind`.
fn named(image: &str, kind: Kind) -> Vec<String> {
    records(&read(image)).iter().filter(|r| r.kind == kind).map(|r| r.requester().to_owned()).collect()
}

#[test]
fn unnamed_component_is_not_in_the_image() {
    for target in TARGETS {
        unnamed_component_is_not_in(target);
    }
}

fn unnamed_component_is_not_in(target: &'static str) {
    let hello = read_for(target, "hello");
    let random = read_for(target, "random");
    // Both are built in one cargo invocation with `unikernel-entropy` as a
    // dependency of the package: only the macro's mention links it.
    assert_eq!(
        symbols_of(&hello, "unikernel_entropy"),
        Vec::<String>::new(),
        "hello must not contain the entropy component"
    );
    let in_random = symbols_of(&random, "unikernel_entropy");
    assert!(!in_random.is_empty(), "random names entropy, so its code must be there");
    assert!(in_random.iter().any(|s| s.contains("cpu5check")), "the component's start-up is linked: {in_random:?}");
}

#[test]
fn networking_is_only_in_images_that_name_net() {
    // The stack, the driver, the virtio transport and smoltcp.
    let crates = ["unikernel_net", "unikernel_virtio_net", "unikernel_virtio", "virtio_drivers", "smoltcp"];
    for target in TARGETS {
        let (hello, http) = (read_for(target, "hello"), read_for(target, "http"));
        for krate in crates {
            assert_eq!(symbols_of(&hello, krate), Vec::<String>::new(), "{target}: hello must not contain {krate}");
            assert!(!symbols_of(&http, krate).is_empty(), "{target}: http names net, so {krate} must be in it");
        }
    }
}

#[test]
fn tls_is_only_in_the_image_that_uses_it() {
    // The TLS crate, rustls, and the RustCrypto primitives behind it.
    let crates = ["unikernel_tls", "rustls", "rustls_rustcrypto", "p256", "x25519_dalek", "aes_gcm", "sha2"];
    let (hello, http, https) = (read("hello"), read("http"), read("https"));
    for krate in crates {
        assert_eq!(symbols_of(&hello, krate), Vec::<String>::new(), "hello must not contain {krate}");
        assert_eq!(symbols_of(&http, krate), Vec::<String>::new(), "http must not contain {krate}");
    }
    for krate in ["unikernel_tls", "rustls", "p256"] {
        assert!(!symbols_of(&https, krate).is_empty(), "https serves TLS, so {krate} must be in it");
    }
}

#[test]
fn storage_and_networking_do_not_pull_each_other_in() {
    let (http, disk) = (read("http"), read("disk"));
    for krate in ["unikernel_storage", "unikernel_virtio_blk"] {
        assert_eq!(symbols_of(&http, krate), Vec::<String>::new(), "http must not contain {krate}");
        assert!(!symbols_of(&disk, krate).is_empty(), "disk names block, so {krate} must be in it");
    }
    for krate in ["unikernel_net", "unikernel_virtio_net", "smoltcp"] {
        assert_eq!(symbols_of(&disk, krate), Vec::<String>::new(), "disk must not contain {krate}");
    }
}

#[test]
fn component_records_list_exactly_the_named_components() {
    assert_eq!(named("hello", Kind::Component), Vec::<String>::new());
    assert_eq!(named("random", Kind::Component), ["entropy"]);
    assert_eq!(named("http", Kind::Component), ["net"]);
    assert_eq!(named("disk", Kind::Component), ["block"]);
    assert_eq!(named("kv", Kind::Component), ["net", "block"]);
}

#[test]
fn device_records_come_from_the_named_components_only() {
    // Each component's NEEDS, written by the application's expansion.
    // hello's one record is the target's: its exit device.
    let hello = records(&read("hello"));
    assert_eq!(
        hello.iter().map(|r| (r.kind, r.arg0, r.requester())).collect::<Vec<_>>(),
        [(Kind::ExitPort, 0xf4, "x86_64")]
    );
    assert_eq!(virtio_devices(&read("random")), []);
    assert_eq!(virtio_devices(&read("http")), [(virtio::NET, true)]);
    assert_eq!(named("http", Kind::Virtio), ["net"]);
    assert_eq!(virtio_devices(&read("disk")), [(virtio::BLOCK, true)]);
    let mut kv = virtio_devices(&read("kv"));
    kv.sort();
    assert_eq!(kv, [(virtio::NET, true), (virtio::BLOCK, true)]);
    // The guest tests use unikernel_net as a library without naming net.
    let guest = unikernel_testing::test_image("unikernel-rt", "guest");
    assert!(!symbols_of(&guest, "unikernel_net").is_empty(), "the control: guest.rs links unikernel_net");
    assert_eq!(virtio_devices(&guest), []);
}

#[test]
fn the_records_are_not_loaded_into_guest_memory() {
    let data = read("http");
    let file = object::File::parse(&*data).expect("ELF");
    let section = file.section_by_name(vmm::SECTION).expect("the section");
    let SectionFlags::Elf { sh_flags } = section.flags() else { unreachable!() };
    assert_eq!(sh_flags & u64::from(SHF_ALLOC), 0, "{} is read from the file, not the guest", vmm::SECTION);
}

#[test]
fn sections_respect_write_xor_execute() {
    for (target, name) in TARGETS.into_iter().flat_map(|t| [(t, "hello"), (t, "random")]) {
        let data = read_for(target, name);
        let file = object::File::parse(&*data).expect("ELF");
        let symbol =
            |n: &str| file.symbols().find(|s| s.name() == Ok(n)).unwrap_or_else(|| panic!("{n} missing")).address();
        let (start, text_end, rodata_end, end) =
            (symbol("__image_start"), symbol("__text_end"), symbol("__rodata_end"), symbol("__image_end"));
        for section in file.sections() {
            let SectionFlags::Elf { sh_flags } = section.flags() else { unreachable!() };
            if sh_flags & u64::from(SHF_ALLOC) == 0 || section.size() == 0 {
                continue;
            }
            let range = section.address()..section.address() + section.size();
            let name = section.name().unwrap_or("?").to_string();
            let (writable, exec) = (sh_flags & u64::from(SHF_WRITE) != 0, sh_flags & u64::from(SHF_EXECINSTR) != 0);
            let (lo, hi, kind) = match (writable, exec) {
                (_, true) => (start, text_end, "executable"),
                // `.got` is written by the linker only, so it is read-only at run time.
                (true, false) if name == ".got" => (text_end, rodata_end, "read-only"),
                (true, false) => (rodata_end, end, "writable"),
                (false, false) => (start, rodata_end, "read-only"),
            };
            assert!(!(exec && writable), "{name} in {name} is both writable and executable");
            assert!(
                lo <= range.start && range.end <= hi,
                "{name}: {kind} section {name} at {range:x?} is outside [{lo:#x}, {hi:#x})"
            );
        }
    }
}

/// The loadable segments follow the ELF headers and each other in the
/// file: each starts at the offset in its page that it has in memory, so
/// the page-aligned ranges above cost no padding in the file (up to 4 KiB
/// each), only what a segment's first section's own alignment asks for
/// (aarch64's boot translation table is a page-aligned `.rodata`).
#[test]
fn segments_are_not_padded_to_pages_in_the_file() {
    for (target, name) in TARGETS.into_iter().flat_map(|t| [(t, "hello"), (t, "http")]) {
        let data = read_for(target, name);
        let file = object::File::parse(&*data).expect("ELF");
        let align_at = |offset: u64| {
            let first = file.sections().find(|s| s.file_range().is_some_and(|(o, size)| o == offset && size > 0));
            first.map_or(1, |s| s.align())
        };
        let mut ranges: Vec<(u64, u64)> = file.segments().map(|s| s.file_range()).filter(|r| r.1 > 0).collect();
        ranges.sort();
        let mut end = 0;
        for (offset, size) in ranges {
            let gap = offset.saturating_sub(end);
            assert!(gap < align_at(offset).max(64), "{target} {name}: {gap} bytes of padding before {offset:#x}");
            end = offset + size;
        }
    }
}

/// Symbols of the timer and interrupt hardware code in `data`: the APIC,
/// I/O APIC, PIT, RTC, clock and interrupt-dispatch modules, and the IRQ
/// gate stubs.
fn clock_or_interrupt_code(data: &[u8]) -> Vec<String> {
    let modules = ["4apic", "6ioapic", "3pit", "3rtc", "5clock", "10interrupts9interrupt"];
    let mut found: Vec<String> = symbols_of(data, "unikernel_x86_64")
        .into_iter()
        .filter(|s| modules.iter().any(|m| s.contains(&format!("16unikernel_x86_64{m}"))))
        .collect();
    let file = object::File::parse(data).expect("ELF");
    let stubs = file.symbols().filter_map(|s| s.name().ok()).filter(|n| *n == "__unikernel_irq_stubs");
    found.extend(stubs.map(str::to_owned));
    found
}

#[test]
fn the_clock_and_interrupt_gates_are_only_in_images_that_use_them() {
    // hello never reads the time, waits or registers an interrupt.
    assert_eq!(clock_or_interrupt_code(&read("hello")), Vec::<String>::new(), "hello links timer or interrupt code");
    // timers sleeps: the clock, the APIC timer and the gates must be there.
    let timers = clock_or_interrupt_code(&read("timers"));
    for needed in ["5clock", "4apic", "3pit", "__unikernel_irq_stubs"] {
        assert!(timers.iter().any(|s| s.contains(needed)), "timers lacks {needed}: {timers:?}");
    }
}

#[test]
fn the_gic_and_timer_are_only_in_aarch64_images_that_use_them() {
    let gic_or_clock = |image: &str| -> Vec<String> {
        let data = read_for(AARCH64, image);
        let ours = symbols_of(&data, "unikernel_aarch64")
            .into_iter()
            .filter(|s| s.contains("17unikernel_aarch645clock") || s.contains("17unikernel_aarch643gic"));
        ours.chain(symbols_of(&data, "arm_gic")).collect()
    };
    assert_eq!(gic_or_clock("hello"), Vec::<String>::new(), "hello links timer or interrupt code");
    let timers = gic_or_clock("timers");
    for needed in ["5clock", "3gic", "arm_gic"] {
        assert!(timers.iter().any(|s| s.contains(needed)), "timers lacks {needed}: {timers:?}");
    }
    // aarch64 reports its status on the console: no exit-device record.
    assert_eq!(records(&read_for(AARCH64, "hello")), []);
}

#[test]
fn the_component_registry_is_only_in_images_with_components() {
    let registry = |image: &str| {
        symbols_of(&read(image), "unikernel_core")
            .into_iter()
            .filter(|s| s.contains("9component8init_all") || s.contains("11start_order"))
            .collect::<Vec<_>>()
    };
    assert_eq!(registry("hello"), Vec::<String>::new(), "hello names no component, yet links the registry");
    assert!(registry("random").iter().any(|s| s.contains("init_all")), "random starts entropy through the registry");
}

#[test]
fn packet_capture_is_only_in_images_that_name_it() {
    // The recorder, the channel it sends on, and their encoders; the hook
    // the NIC adapter checks (`capture::tap`, `HOOK`) is in every networked
    // image.
    let capture_code = |image: &[u8]| -> Vec<String> {
        let ours = symbols_of(image, "unikernel_net")
            .into_iter()
            .filter(|s| s.contains("7capture") && !s.contains("3tap") && !s.contains("4HOOK"));
        let channel = symbols_of(image, "unikernel_core").into_iter().filter(|s| s.contains("7channel"));
        ours.chain(channel).chain(symbols_of(image, "base64")).collect()
    };
    assert_eq!(capture_code(&read("http")), Vec::<String>::new(), "http does not name pcap");
    let captured = capture_code(&read("capture"));
    for needed in ["7capture6record", "7channel4send", "base64"] {
        assert!(captured.iter().any(|s| s.contains(needed)), "capture names pcap, so {needed} is in it: {captured:?}");
    }
}

#[test]
fn tracing_is_not_in_images_built_without_it() {
    // `hello`, `http` and `disk` are built without the `trace` feature: no
    // recorder, no instrumentation point, no trace stream record.
    for image in ["hello", "http", "disk"] {
        let data = read(image);
        let tracer: Vec<String> =
            symbols_of(&data, "unikernel_core").into_iter().filter(|s| s.contains("5trace")).collect();
        assert_eq!(tracer, Vec::<String>::new(), "{image}");
        assert!(records(&data).iter().all(|r| r.kind != Kind::Stream), "{image} has a stream record");
    }
}

#[test]
fn the_dns_server_is_only_in_the_dns_image() {
    // The server and NLnet Labs' `domain`, which only it uses.
    let dns = read("dns");
    for krate in ["unikernel_dns", "domain"] {
        assert!(!symbols_of(&dns, krate).is_empty(), "dns serves a zone, so {krate} must be in it");
        for image in ["hello", "http"] {
            assert_eq!(symbols_of(&read(image), krate), Vec::<String>::new(), "{image} must not contain {krate}");
        }
    }
}

#[test]
fn the_master_file_reader_is_only_in_the_image_that_reads_a_zone_at_boot() {
    // `dns` compiles its zone in: no reader, no record-data scanners, no disk.
    let reader = |image: &[u8]| -> Vec<String> {
        let ours =
            symbols_of(image, "unikernel_dns").into_iter().filter(|s| s.contains("6master") || s.contains("4disk"));
        let scan = symbols_of(image, "domain").into_iter().filter(|s| s.contains("4scan"));
        ours.chain(scan).chain(symbols_of(image, "unikernel_storage")).collect()
    };
    assert_eq!(reader(&read("dns")), Vec::<String>::new(), "dns must not contain a master-file reader");
    let found = reader(&read("dns_disk"));
    for part in ["6master", "4disk", "4scan", "unikernel_storage"] {
        assert!(found.iter().any(|s| s.contains(part)), "dns_disk reads its zone at boot, so {part} must be in it");
    }
}
