//! The `virtio_console` component in the guest: `log` records leave the
//! serial console. The host test `qemu.rs` boots this image and finds them
//! in the runner's console log file, and only the `println!`s on serial.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

unikernel::test_main!(unikernel_virtio_console::virtio_console);

#[unikernel::test]
fn records_go_to_the_log_and_prints_to_the_console() {
    assert!(unikernel::component::linked("virtio_console"));
    log::warn!("a record for the log file");
    // Longer than a page: one record, one buffer.
    log::warn!("a long record: {}", "0123456789".repeat(500));
    unikernel::println!("a line for the console");
}
