//! Exits at its first instructions, before any setup: whatever boot time it
//! measures is QEMU's alone. On x86_64 through `isa-debug-exit` in 32-bit
//! mode; on aarch64 through PSCI `SYSTEM_OFF` (QEMU's `virt` answers HVC).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
core::arch::global_asm!(
    r#"
    .text
    .global floor_start
floor_start:
    movz    x0, #0x0008
    movk    x0, #0x8400, lsl #16   /* PSCI SYSTEM_OFF */
    hvc     #0
1:  wfi
    b       1b
"#
);

#[cfg(all(target_os = "none", target_arch = "x86_64"))]
core::arch::global_asm!(
    r#"
    .section .note.pvh, "a", @note
    .balign 4
    .long 4, 8, 18
    .asciz "Xen"
    .balign 4
    .quad floor_start32
    .balign 4

    .text
    .code32
    .global floor_start32
floor_start32:
    movl $1, %eax          /* guest status 0: unikernel_core::exit::device_value(0) */
    outl %eax, $0xf4
1:  hlt
    jmp 1b
    .code64
"#,
    options(att_syntax)
);

// The exit device at the port the code above writes, for the runner.
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
unikernel_core::vmm_records!(unikernel_core::vmm::Record::exit_port(0xf4, "floor").required());
// The panic handler is unikernel-core's; nothing here can panic, so the
// linker drops it.
#[cfg(target_os = "none")]
use unikernel_core as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("floor is a bare-metal kernel: build it with --target x86_64-unknown-none or aarch64-unknown-none");
    std::process::exit(1);
}
