//! An image of this package that names `entropy` but not `virtio_rng`:
//! `qemu.rs` checks that none of the driver reaches it.
#![cfg_attr(target_os = "none", no_std, no_main)]

unikernel::test_main!(unikernel_entropy::entropy);

#[unikernel::test]
fn the_driver_is_not_a_component_here() {
    assert!(!unikernel::component::linked("virtio_rng"));
}
