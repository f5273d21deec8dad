//! Console output: `print!`/`println!` and the writer behind them.

use core::fmt::{self, Write};

/// Writes each formatted piece straight to the platform. No lock is held
/// while user `Display` code runs, so a panic inside it can still print its
/// report; the platform's writer serialises the pieces themselves.
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
    let _ = Console.write_fmt(args);
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
