//! Exits through `isa-debug-exit` at its first instructions, in 32-bit mode
//! before any setup: whatever boot time it measures is QEMU's alone.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
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
#[cfg(target_os = "none")]
unikernel_core::vmm_records!(unikernel_core::vmm::Record::exit_port(0xf4, "floor").required());
// The panic handler is unikernel-core's; nothing here can panic, so the
// linker drops it.

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("floor is a bare-metal kernel: build it with --target x86_64-unknown-none");
    std::process::exit(1);
}
