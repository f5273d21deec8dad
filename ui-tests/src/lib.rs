//! `tests/ui.rs` holds the trybuild cases; the dependencies are what they
//! compile against. The README below is this crate's documentation, so its
//! Rust examples are doctests: each compiles, and the ones that end also
//! run, on the host (`cargo test -p ui-tests --target x86_64-unknown-linux-gnu --doc`).
//! The component crate's example (a `rs` block, a library rather than a
//! program) is compiled and booted by `targets/runner/tests/outside_component.rs`.
#![doc = include_str!("../../README.md")]
#![forbid(unsafe_code)]
