//! Runtime tests that run inside the unikernel: `cargo test --test guest`
//! boots them in QEMU; with `--target x86_64-unknown-linux-gnu` they run
//! hosted. Arguments filter by name, as with libtest.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::{boxed::Box, string::String, vec::Vec};
use unikernel::Error;

unikernel::test_main!();

#[unikernel::test]
fn heap_allocates_and_frees() {
    let before = unikernel::heap::stats().used;
    allocate_and_drop();
    // Bare metal: everything allocated came back (hosted has no statistics).
    assert_eq!(unikernel::heap::stats().used, before);
}

fn allocate_and_drop() {
    let v: Vec<u64> = (0..10_000).collect();
    assert_eq!(v.iter().sum::<u64>(), 49_995_000);
    let s: String = ["uni", "kernel"].concat();
    assert_eq!(s, "unikernel");
    let b = Box::new([7u8; 4096]);
    assert!(b.iter().all(|&x| x == 7));
}

#[unikernel::test]
fn error_displays_its_message() -> Result<(), Error> {
    let e = Error::msg("disk on fire");
    assert_eq!(alloc::format!("{e}"), "disk on fire");
    Ok(())
}

/// A component's crate used as a library (its address parser here) is
/// linked, but the component is not named: it does not start, and the
/// image asks the VMM for none of its devices (`targets/runner/tests/elf.rs`).
#[unikernel::test]
fn a_component_crate_used_as_a_library_starts_nothing() {
    let parsed = unikernel_net::parse_cidr("10.0.2.15/24");
    assert_eq!(parsed, Some((core::net::Ipv4Addr::new(10, 0, 2, 15), 24)));
    assert!(!unikernel::component::linked("net"));
}
