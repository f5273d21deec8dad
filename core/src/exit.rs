//! Exit statuses, shared by the guest, the hosted target and the runner.

/// `main` returned `Ok` (or `()`); every test passed.
pub const SUCCESS: u8 = 0;
/// `main` returned `Err`, a component failed to start, or a test failed.
pub const FAILURE: u8 = 1;
/// A panic (the status Rust's std uses for a panicking process).
pub const PANIC: u8 = 101;
/// A CPU exception (page fault, double fault, invalid opcode, ...).
pub const FAULT: u8 = 102;

/// What the guest writes to an exit device (QEMU's `isa-debug-exit`, which
/// exits QEMU with `(value << 1) | 1`): `status + 1`, so that no guest status
/// looks like QEMU's own failure status 1. Statuses above 126 become 126:
/// the process status must fit a byte.
pub const fn device_value(status: u8) -> u32 {
    let status = if status > 126 { 126 } else { status };
    status as u32 + 1
}

/// The guest's status from QEMU's exit status after the guest wrote
/// [`device_value`]; `None` for a status QEMU gives on its own (0 after a
/// shutdown or triple fault, 1 on failure, even numbers).
pub const fn device_status(qemu_status: i32) -> Option<u8> {
    if qemu_status >= 3 && qemu_status % 2 == 1 && qemu_status <= 255 {
        Some(((qemu_status >> 1) - 1) as u8)
    } else {
        None
    }
}

/// What a guest prints before it stops a machine that has no exit device
/// (Firecracker's device model, aarch64's PSCI power-off): the status in a
/// line a person reads and the runner parses back ([`from_console`]).
pub struct ConsoleLine(pub u8);

const CONSOLE_PREFIX: &str = "unikernel: exit status ";

impl core::fmt::Display for ConsoleLine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{CONSOLE_PREFIX}{} (no exit device: stopping the machine)", self.0)
    }
}

/// The status of a [`ConsoleLine`], if `line` is one.
pub fn from_console(line: &str) -> Option<u8> {
    let rest = line.trim_end().strip_prefix(CONSOLE_PREFIX)?;
    rest.split(' ').next()?.parse().ok()
}

/// Ends the unikernel with `code`.
pub fn exit(code: u8) -> ! {
    crate::if_tracing! { crate::trace::flush(); }
    crate::platform::get().exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_survives_the_exit_device() {
        for status in [SUCCESS, FAILURE, PANIC, FAULT, 126] {
            let qemu = ((device_value(status) << 1) | 1) as i32;
            assert_eq!(device_status(qemu), Some(status));
        }
        assert_eq!(device_status(((device_value(255) << 1) | 1) as i32), Some(126));
        for qemu_own in [0, 1, 2, 4, 256, -1] {
            assert_eq!(device_status(qemu_own), None, "{qemu_own}");
        }
    }

    #[test]
    fn the_console_line_gives_the_status_back() {
        for status in [SUCCESS, FAILURE, PANIC, FAULT, 255] {
            let line = alloc::format!("{}\r\n", ConsoleLine(status));
            assert_eq!(from_console(&line), Some(status), "{line}");
        }
        for other in
            ["exit status 3", "unikernel: exit status ", "unikernel: exit status 300 (x)", "x unikernel: exit status 1"]
        {
            assert_eq!(from_console(other), None, "{other}");
        }
    }
}
