//! Exit statuses, shared by the guest, the hosted target and the runner.

/// `main` returned `Ok` (or `()`); every test passed.
pub const SUCCESS: u8 = 0;
/// `main` returned `Err`, a component failed to start, or a test failed.
pub const FAILURE: u8 = 1;
/// A panic (the status Rust's std uses for a panicking process).
pub const PANIC: u8 = 101;
/// A CPU exception (page fault, double fault, invalid opcode, ...).
pub const FAULT: u8 = 102;

/// Ends the unikernel with `code`.
pub fn exit(code: u8) -> ! {
    crate::platform::get().exit(code)
}
