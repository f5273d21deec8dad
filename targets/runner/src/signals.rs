//! Stopping: the runner catches SIGINT, SIGTERM and SIGHUP so that it can
//! pass them on to QEMU and wait for it, rather than die and leave QEMU
//! orphaned with the host ports and the disk image; and QEMU is tied to the
//! runner's life for the signal no one can catch, SIGKILL.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The stop signals the runner has received and not yet handled.
#[derive(Clone)]
pub struct Stops(Arc<AtomicUsize>);

impl Stops {
    /// From now on, SIGINT, SIGTERM and SIGHUP are recorded, not fatal.
    pub fn catch() -> Result<Self, String> {
        let last = Arc::new(AtomicUsize::new(0));
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            signal_hook::flag::register_usize(signal, last.clone(), signal as usize)
                .map_err(|e| format!("cannot catch signal {signal}: {e}"))?;
        }
        Ok(Self(last))
    }

    /// Stops that no signal sets, only [`Stops::request`]: how the runner
    /// stops a guest itself (`--on-demand`), as if the signal had come.
    pub fn requested() -> Self {
        Self(Arc::new(AtomicUsize::new(0)))
    }

    /// Records `signal` as received.
    pub fn request(&self, signal: i32) {
        self.0.store(usize::try_from(signal).expect("signal numbers are positive"), Ordering::Relaxed);
    }

    /// The stop signal received since the last call, if any (the latest
    /// one when several came).
    pub fn take(&self) -> Option<i32> {
        match self.0.swap(0, Ordering::Relaxed) {
            0 => None,
            signal => Some(signal as i32),
        }
    }
}

/// Sends `signal` to `child`, which must not have been waited for yet
/// (so its pid cannot belong to another process).
pub fn forward(child: &Child, signal: i32) {
    let pid = libc::pid_t::try_from(child.id()).expect("pids fit pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our
    // unreaped child's, so it names QEMU (or its zombie), nothing else.
    unsafe { libc::kill(pid, signal) };
}

/// `15 (SIGTERM)`.
pub fn describe(signal: i32) -> String {
    match signal_hook::low_level::signal_name(signal) {
        Some(name) => format!("{signal} ({name})"),
        None => signal.to_string(),
    }
}

/// The shell's exit status for a run stopped by `signal`: 128 + N.
pub fn status(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

/// Makes the process `command` starts receive SIGKILL when the runner dies,
/// even by SIGKILL. Linux delivers it when the *thread* that spawned the
/// child ends, so spawn from a thread that lives as long as the runner (the
/// main thread does).
#[cfg(target_os = "linux")]
pub fn die_with_runner(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let runner = libc::pid_t::try_from(std::process::id()).expect("pids fit pid_t");
    // SAFETY: the hook runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: prctl and getppid are, and the
    // closure allocates nothing and takes no lock (the error for a failed
    // prctl is built from errno without allocating).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The runner may have died before the prctl: then no signal
            // will come, so do not start QEMU at all.
            if libc::getppid() != runner {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        })
    };
}
