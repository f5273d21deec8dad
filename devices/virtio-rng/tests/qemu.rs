//! The host side of the guest tests: boots `guest.rs` in QEMU on a CPU
//! without RDRAND, and inspects the images: only those that name
//! `virtio_rng` hold the driver and ask the runner for the device.

use unikernel_core::vmm::virtio;
use unikernel_testing::{AARCH64, Cargo, cargo_bare, cargo_on, symbols_of, test_image, virtio_devices};

/// QEMU's basic 64-bit CPU, which has neither RDRAND nor RDSEED.
const NO_RDRAND: &str = "-cpu qemu64";

/// `cargo ARGS` for bare metal; images boot on a CPU without RDRAND.
fn cargo(args: &[&str]) -> Cargo {
    cargo_bare(args, &[("UNIKERNEL_QEMU_ARGS", NO_RDRAND)])
}

#[test]
fn entropy_reads_the_device_on_a_cpu_without_a_random_number_instruction() {
    let guest = cargo(&["test", "-p", "unikernel-virtio-rng", "--test", "guest"]);
    assert!(guest.ok && guest.stdout.contains("test result: ok"), "{}{}", guest.stdout, guest.stderr);
    // The same CPU refuses the default source: the bytes above came from the device.
    let random = cargo(&["run", "-p", "unikernel-rt", "--example", "random"]);
    assert!(!random.ok && random.stdout.contains("this CPU has no RDRAND"), "{}{}", random.stdout, random.stderr);
}

#[test]
fn on_aarch64_entropy_reads_the_device_on_a_cpu_without_rndr() {
    // QEMU's Cortex-A57 has no FEAT_RNG.
    let no_rndr = [("UNIKERNEL_QEMU_ARGS", "-cpu cortex-a57")];
    let guest = cargo_on(AARCH64, &["test", "-p", "unikernel-virtio-rng", "--test", "guest"], &no_rndr);
    assert!(guest.ok && guest.stdout.contains("test result: ok"), "{}{}", guest.stdout, guest.stderr);
    let random = cargo_on(AARCH64, &["run", "-p", "unikernel-rt", "--example", "random"], &no_rndr);
    assert!(!random.ok && random.stdout.contains("or RNDR (aarch64)"), "{}{}", random.stdout, random.stderr);
}

#[test]
fn only_an_image_that_names_virtio_rng_holds_the_driver_and_asks_for_the_device() {
    let image = |test| test_image("unikernel-virtio-rng", test);
    let (named, unnamed) = (image("guest"), image("unnamed"));
    for krate in ["unikernel_virtio_rng", "unikernel_virtio", "virtio_drivers"] {
        assert_eq!(symbols_of(&unnamed, krate), Vec::<String>::new(), "an image without virtio_rng holds {krate}");
        assert!(!symbols_of(&named, krate).is_empty(), "the image naming virtio_rng lacks {krate}");
    }
    assert_eq!(virtio_devices(&unnamed), []);
    assert_eq!(virtio_devices(&named), [(virtio::ENTROPY, true)]);
}

#[test]
fn a_device_that_stops_answering_fails_the_fill_instead_of_hanging_the_guest() {
    // QEMU's rate limit: 64 bytes, then nothing for ten minutes. The guest
    // test draws thousands of bytes; the driver must give up on the device
    // at its deadline and the test fail, long before the runner's timeout
    // (which would exit 124).
    let limited = format!("{NO_RDRAND} -global virtio-rng-device.max-bytes=64 -global virtio-rng-device.period=600000");
    let guest = cargo_bare(
        &["test", "-p", "unikernel-virtio-rng", "--test", "guest", "--", "the_handle_reads_the_device"],
        &[("UNIKERNEL_QEMU_ARGS", limited.as_str()), ("UNIKERNEL_TIMEOUT", "300")],
    );
    let out = format!("{}{}", guest.stdout, guest.stderr);
    assert!(!guest.ok, "{out}");
    assert!(out.contains("virtio-rng: the device did not answer within its deadline"), "{out}");
    assert!(!out.contains("timed out"), "the runner's timeout stopped it, not the driver: {out}");
}
