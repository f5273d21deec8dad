//! The lines of a crash report that hold code addresses: the target prints
//! them, the runner finds them and adds the function's name. One home for
//! their format.

use core::fmt;

/// A code address in a crash report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeLine {
    /// Where the fault happened: the program counter.
    At(u64),
    /// A return address of the backtrace, just after its call.
    CalledFrom(u64),
}

const AT: &str = "at pc 0x";
const CALLED_FROM: &str = "called from 0x";

impl fmt::Display for CodeLine {
    /// The indented line of the report, e.g. `    at pc 0x00000000001234ab`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::At(address) => write!(f, "    {AT}{address:016x}"),
            Self::CalledFrom(address) => write!(f, "    {CALLED_FROM}{address:016x}"),
        }
    }
}

impl CodeLine {
    /// Reads a line as printed (surrounding white space ignored).
    pub fn parse(line: &str) -> Option<Self> {
        let line = line.trim();
        let (line_of, hex): (fn(u64) -> Self, &str) = match line.strip_prefix(AT) {
            Some(hex) => (Self::At, hex),
            None => (Self::CalledFrom, line.strip_prefix(CALLED_FROM)?),
        };
        u64::from_str_radix(hex, 16).ok().map(line_of)
    }

    /// The address whose function to name: a return address points after
    /// its call, so the call itself is the byte before.
    pub fn code_address(self) -> Option<u64> {
        match self {
            Self::At(address) => Some(address),
            Self::CalledFrom(address) => address.checked_sub(1),
        }
    }
}

/// Prints the return addresses of the frame-pointer chain from `fp` (the
/// cargo config builds with `force-frame-pointers`): on x86_64 and aarch64
/// alike each frame record holds the caller's frame pointer, then the
/// return address. Stops at a null, unmapped or misaligned record.
pub fn backtrace(mut fp: u64, is_mapped: fn(u64) -> bool) {
    for _ in 0..16 {
        if fp == 0 || !fp.is_multiple_of(8) || !is_mapped(fp) || !is_mapped(fp + 8) {
            return;
        }
        // SAFETY: both words are mapped and aligned (checked just above).
        let (caller_fp, return_address) = unsafe { ((fp as *const u64).read(), ((fp + 8) as *const u64).read()) };
        if return_address == 0 {
            return;
        }
        crate::println!("{}", CodeLine::CalledFrom(return_address));
        fp = caller_fp;
    }
}

#[cfg(test)]
mod tests {
    use super::CodeLine;

    #[test]
    fn printed_lines_read_back() {
        for line in [CodeLine::At(0x1234ab), CodeLine::CalledFrom(u64::MAX), CodeLine::CalledFrom(0)] {
            assert_eq!(CodeLine::parse(&std::format!("{line}\r\n")), Some(line));
        }
        assert_eq!(std::format!("{}", CodeLine::At(0x1234ab)), "    at pc 0x00000000001234ab");
        assert_eq!(CodeLine::CalledFrom(0x1000).code_address(), Some(0xfff));
        assert_eq!(CodeLine::CalledFrom(0).code_address(), None);
    }

    #[test]
    fn other_lines_are_not_code_lines() {
        for line in ["at pc 0x", "at pc 0xzz", "    cr2 0x0", "called from 0x1 2", "at pc 0x10000000000000000"] {
            assert_eq!(CodeLine::parse(line), None, "{line}");
        }
    }
}
