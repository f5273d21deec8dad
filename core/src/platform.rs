//! The few services a target provides to the runtime (devices and their
//! interrupts are the [`crate::bus`]'s, the clock and the idle halt
//! [`crate::time::Clock`]'s: both bound at link time, so that only what an
//! image uses is linked).

use spin::Once;

/// What a boot target must provide. Installed once, before anything prints.
pub trait Platform: Sync {
    /// Writes console output (serial on bare metal, stdout when hosted).
    fn write(&self, bytes: &[u8]);
    /// Ends the unikernel with `code` as its exit status.
    fn exit(&self, code: u8) -> !;
    /// Bytes the application can still allocate, when the target knows
    /// (by default: what the runtime's heap has left).
    fn free_memory(&self) -> Option<usize> {
        Some(crate::heap::stats().free)
    }
    /// Runs `f` so that a panic inside it is reported as `Err` with the
    /// panic message, and execution goes on. Targets without unwinding
    /// return `None` (the default) and the runtime recovers through
    /// [`Platform::restart`].
    fn catch_panic(&self, _f: fn() -> Result<(), crate::Error>) -> Option<Result<(), crate::Error>> {
        None
    }
    /// Abandons the current stack and runs `f` on a fresh one. Used to go on
    /// with the next test after a panic on targets that cannot unwind.
    fn restart(&self, f: fn() -> !) -> !;
    /// CPU cycles from the first guest instruction until now, where known.
    fn boot_cycles(&self) -> Option<u64>;
    /// Ends a [`crate::time::Clock::idle`] early: a waker fired from where
    /// the executor's own idle check cannot see it (another host thread).
    /// Nothing by default: on one CPU wakers run in a task or in an
    /// interrupt handler, which ends the halt by itself.
    fn notify(&self) {}
    /// Whether the caller runs where the executor does (always, the
    /// default, on a single CPU; the main thread when hosted). Tasks are
    /// not `Send`, so they may only be spawned there.
    fn on_executor_thread(&self) -> bool {
        true
    }
}

/// `name() -> u64` functions returning the addresses of linker-script
/// symbols (`image_start => __image_start`): the targets' layouts.
#[macro_export]
macro_rules! linker_symbols {
    ($($name:ident => $sym:ident),* $(,)?) => {
        unsafe extern "C" {
            $(static $sym: u8;)*
        }
        $(
            pub fn $name() -> u64 {
                // Only the address of the linker symbol is taken, never its value.
                (&raw const $sym) as u64
            }
        )*
    };
}

static PLATFORM: Once<&'static dyn Platform> = Once::new();

/// Installs the target's platform. Later calls are ignored.
pub fn install(platform: &'static dyn Platform) {
    PLATFORM.call_once(|| platform);
}

/// The installed platform.
///
/// # Panics
/// If no target installed one: a runtime bug, not a user error.
pub fn get() -> &'static dyn Platform {
    *PLATFORM.get().expect("no platform installed: the boot target must call platform::install first")
}

/// The installed platform, if any (the panic path must not panic again).
pub fn try_get() -> Option<&'static dyn Platform> {
    PLATFORM.get().copied()
}
