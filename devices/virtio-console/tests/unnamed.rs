//! An image of this package that does not name `virtio_console`: `qemu.rs`
//! checks that none of the driver reaches it.
#![cfg_attr(target_os = "none", no_std, no_main)]

unikernel::test_main!();

#[unikernel::test]
fn the_driver_is_not_a_component_here() {
    assert!(!unikernel::component::linked("virtio_console"));
}
