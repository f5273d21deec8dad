//! The host side of the guest tests: boots `guest.rs` in QEMU and reads
//! the log file the runner names, and inspects the images: only those that
//! name `virtio_console` hold the driver and ask the runner for the device.

use unikernel_core::vmm::{Kind, virtio};
use unikernel_testing::{cargo_bare, records, symbols_of, test_image, virtio_devices};

/// Where the runner said the guest's log goes.
const LOG_AT: &str = "unikernel-runner: the guest's log goes to ";

#[test]
fn records_reach_the_host_file_and_prints_stay_on_the_serial_console() {
    let guest = cargo_bare(&["test", "-p", "unikernel-virtio-console", "--test", "guest"], &[]);
    let (console, runner) = (guest.stdout, guest.stderr);
    assert!(guest.ok && console.contains("test result: ok"), "{console}{runner}");
    let path = runner.lines().find_map(|l| l.strip_prefix(LOG_AT)).expect("the runner names the log file");
    let log = std::fs::read_to_string(path).expect("read the log file");
    let long = format!("[WARN  guest] a long record: {}\n", "0123456789".repeat(500));
    assert!(log.contains("[WARN  guest] a record for the log file\n") && log.contains(&long), "{log}");
    assert!(console.contains("a line for the console") && !console.contains("a record for the log file"));
}

#[test]
fn the_log_and_the_channel_each_go_to_their_own_console() {
    let guest = cargo_bare(&["test", "-p", "unikernel-virtio-console", "--test", "channel"], &[]);
    let (console, runner) = (guest.stdout, guest.stderr);
    assert!(guest.ok && console.contains("test result: ok"), "{console}{runner}");
    let path = runner.lines().find_map(|l| l.strip_prefix(LOG_AT)).expect("the runner names the log file");
    let log = std::fs::read_to_string(path).expect("read the log file");
    let records = ["a record beside the channel", "a record after the channel's lines"];
    assert!(records.iter().all(|r| log.contains(r)) && !log.contains("uk:"), "the log file holds the log only:\n{log}");
    assert!(!console.contains("uk:"), "no channel line on the serial console:\n{console}");
}

/// The symbols of the `channel` component and of the core's transport hook.
fn channel_symbols(image: &[u8]) -> Vec<String> {
    let ours = symbols_of(image, "unikernel_virtio_console").into_iter().filter(|s| s.contains("7channel"));
    ours.chain(symbols_of(image, "unikernel_core").into_iter().filter(|s| s.contains("13set_transport"))).collect()
}

#[test]
fn only_an_image_that_names_virtio_console_holds_the_driver_and_asks_for_the_device() {
    let image = |test| test_image("unikernel-virtio-console", test);
    let (named, unnamed) = (image("guest"), image("unnamed"));
    for krate in ["unikernel_virtio_console", "unikernel_virtio", "virtio_drivers"] {
        assert_eq!(symbols_of(&unnamed, krate), Vec::<String>::new(), "an image without virtio_console holds {krate}");
        assert!(!symbols_of(&named, krate).is_empty(), "the image naming virtio_console lacks {krate}");
    }
    assert_eq!(virtio_devices(&unnamed), []);
    assert_eq!(virtio_devices(&named), [(virtio::CONSOLE, true)]);
}

#[test]
fn only_an_image_that_names_channel_holds_it_and_asks_for_a_second_console() {
    let (log_only, both) =
        (test_image("unikernel-virtio-console", "guest"), test_image("unikernel-virtio-console", "channel"));
    assert_eq!(channel_symbols(&log_only), Vec::<String>::new(), "an image without `channel` holds none of it");
    assert!(!channel_symbols(&both).is_empty(), "the image naming `channel` lacks it");
    let consoles = |image| {
        let records = records(image).into_iter().filter(|r| r.kind == Kind::Virtio && r.device == virtio::CONSOLE);
        records.map(|r| r.index).collect::<Vec<_>>()
    };
    assert_eq!(consoles(&log_only), [0]);
    let mut instances = consoles(&both);
    instances.sort_unstable();
    assert_eq!(instances, [0, virtio::CHANNEL_CONSOLE]);
}
