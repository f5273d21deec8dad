//! Console output: `print!`/`println!` and the writer behind them.

use core::fmt::{self, Write};
use spin::Mutex;

/// Serialises writers so that lines from the log, the panic path and the
/// application do not interleave.
static CONSOLE: Mutex<Console> = Mutex::new(Console);

struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(platform) = crate::platform::try_get() {
            platform.write(s.as_bytes());
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    // Formatting errors can only come from user Display impls; there is
    // nowhere better to report them than the console that failed.
    let _ = CONSOLE.lock().write_fmt(args);
}

/// Frees the console lock held by code that will never run again (a panic or
/// CPU fault in the middle of a `println!`), so the report gets out.
///
/// # Safety
/// The caller must be on the single path that abandons that code.
pub unsafe fn force_unlock() {
    // SAFETY: forwarded to the caller; the lock only guards output order.
    unsafe { CONSOLE.force_unlock() };
}

/// Prints to the unikernel console (serial on bare metal, stdout when hosted).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(::core::format_args!($($arg)*)) };
}

/// Prints a line to the unikernel console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(::core::format_args!("{}\n", ::core::format_args!($($arg)*))) };
}
