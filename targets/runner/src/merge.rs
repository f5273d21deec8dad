//! `--merge-memory`: many instances of one image on a host share their
//! identical pages through the kernel's same-page merging (KSM).
//!
//! Measured with `bench/density.sh` (40 `http` instances, 2M RAM, TCG): the
//! QEMU processes' own memory is most of an instance, and most of it is the
//! same in every instance once three things hold, which QEMU alone cannot
//! arrange (its `mem-merge` covers guest RAM only):
//! - every anonymous page of QEMU is mergeable (`PR_SET_MEMORY_MERGE`), not
//!   only guest RAM: heap, relocated data, translated code;
//! - QEMU's addresses are not randomized (`ADDR_NO_RANDOMIZE`), so the
//!   pointers in those pages, and so the pages, are identical across
//!   instances; this gives up ASLR for QEMU, the user's trade;
//! - no transparent huge pages (`PR_SET_THP_DISABLE`): a huge page holds
//!   2 MiB as soon as one byte of it is touched, and KSM merges 4 KiB pages.
//!
//! All three are inherited across `exec`; they apply to QEMU only.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Where the kernel says whether its merging thread runs (root may write 1).
const KSM_RUN: &str = "/sys/kernel/mm/ksm/run";

/// Refuses a kernel without per-process merging (Linux before 6.4), and
/// says when nothing will merge because ksmd is not running.
pub fn check() -> Result<(), String> {
    // SAFETY: PR_GET_MEMORY_MERGE only reads a flag of this process.
    if unsafe { libc::prctl(libc::PR_GET_MEMORY_MERGE, 0, 0, 0, 0) } < 0 {
        return Err(format!(
            "--merge-memory needs Linux 6.4 or later (prctl PR_SET_MEMORY_MERGE): {}",
            io::Error::last_os_error()
        ));
    }
    if std::fs::read_to_string(KSM_RUN).map_or(true, |run| run.trim() != "1") {
        eprintln!(
            "unikernel-runner: --merge-memory: the kernel's same-page merging is off, nothing merges until \
             `echo 1 > {KSM_RUN}` (root)"
        );
    }
    Ok(())
}

/// Makes the QEMU `command` starts mergeable, not randomized and without
/// huge pages (see the module's comment).
pub fn mergeable(command: &mut Command) {
    // SAFETY: the hook runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: prctl and personality are system
    // calls, and nothing here allocates or takes a lock.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_MEMORY_MERGE, 1, 0, 0, 0) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // 0xffffffff queries the current persona without changing it.
            let persona = libc::personality(0xffff_ffff);
            if persona == -1 || libc::personality((persona | libc::ADDR_NO_RANDOMIZE) as libc::c_ulong) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
