//! Fails on purpose, in the way the command line names, to show the crash
//! reports: `cargo run --example crash -- MODE` with MODE one of `panic`,
//! `error`, `null`, `write-rodata`, `write-text`, `exec-stack`,
//! `stack-overflow`, `ud2` (x86_64) or `udf` (aarch64).
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;

#[unikernel]
fn main() -> Result<(), Error> {
    let mode = unikernel::cmdline::args().next().unwrap_or("");
    println!("crashing with: {mode}");
    match mode {
        "panic" => panic!("deliberate panic"),
        "error" => Err(Error::msg("deliberate error")),
        "null" => {
            // SAFETY: none; the read faults on purpose (page 0 is unmapped).
            let value = unsafe { core::ptr::read_volatile(core::hint::black_box(core::ptr::null::<u64>())) };
            println!("read {value} from address 0");
            Ok(())
        }
        "write-rodata" => {
            static CONSTANT: u64 = 42;
            let p = core::hint::black_box(&raw const CONSTANT).cast_mut();
            // SAFETY: none; the write faults on purpose (rodata is read-only).
            unsafe { core::ptr::write_volatile(p, 7) };
            Ok(())
        }
        "write-text" => {
            let p = core::hint::black_box(recurse as *const u8).cast_mut();
            // SAFETY: none; the write faults on purpose (code is read-only).
            unsafe { core::ptr::write_volatile(p, 0xc3) };
            Ok(())
        }
        "exec-stack" => {
            // `ret` on the stack: W^X must refuse to run it.
            let code = core::hint::black_box([0xc3u8; 16]);
            // SAFETY: none; the call faults on purpose (the stack is NX).
            let f: extern "C" fn() = unsafe { core::mem::transmute(code.as_ptr()) };
            f();
            Ok(())
        }
        "stack-overflow" => {
            println!("depth {}", recurse(0));
            Ok(())
        }
        #[cfg(target_arch = "x86_64")]
        "ud2" => {
            // SAFETY: none; raises #UD on purpose.
            unsafe { core::arch::asm!("ud2") };
            Ok(())
        }
        #[cfg(target_arch = "aarch64")]
        "udf" => {
            // SAFETY: none; an undefined instruction on purpose.
            unsafe { core::arch::asm!("udf #0") };
            Ok(())
        }
        other => Err(Error::msg(unknown_mode(other))),
    }
}

fn unknown_mode(mode: &str) -> &'static str {
    if mode.is_empty() { "no crash mode given" } else { "unknown crash mode" }
}

/// Recurses forever; `black_box` keeps the frames from being optimised out.
#[expect(unconditional_recursion, reason = "overflowing the stack is the point")]
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 64]);
    recurse(depth + 1) + frame[0]
}
