//! The PVH entry: 32-bit protected mode, paging off, `%ebx` = physical
//! address of `hvm_start_info`. Identity-maps the first GiB with 2 MiB
//! pages, enters long mode and calls `boot_main` on the boot stack.

use core::arch::global_asm;

/// TSC at the first instruction, for the boot-time figure.
#[unsafe(no_mangle)]
static mut __unikernel_boot_tsc: u64 = 0;

/// TSC cycles since the first instruction.
pub fn cycles_since_entry() -> u64 {
    // SAFETY: written once by the entry code before any Rust runs.
    let start = unsafe { (&raw const __unikernel_boot_tsc).read() };
    // SAFETY: RDTSC has no side effects; it exists on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }.wrapping_sub(start)
}

global_asm!(
    r#"
    .section .note.pvh, "a", @note
    .balign 4
    .long 4                         /* name size: "Xen\0" */
    .long 8                         /* descriptor size */
    .long 18                        /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad __unikernel_start32
    .balign 4

    .section .boot, "ax"
    .code32
    .global __unikernel_start32
__unikernel_start32:
    cli
    cld
    rdtsc
    movl %eax, __unikernel_boot_tsc
    movl %edx, __unikernel_boot_tsc + 4
    movl %ebx, %esi

    /* PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] -> i * 2 MiB, present+writable+huge */
    movl $__unikernel_boot_pdpt + 0x3, __unikernel_boot_pml4
    movl $__unikernel_boot_pd + 0x3, __unikernel_boot_pdpt
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    movl %eax, __unikernel_boot_pd(, %ecx, 8)
    incl %ecx
    cmpl $512, %ecx
    jne 1b

    movl $__unikernel_boot_pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $(1 << 5), %eax             /* PAE */
    movl %eax, %cr4
    movl $0xC0000080, %ecx          /* EFER */
    rdmsr
    orl $((1 << 8) | (1 << 11)), %eax  /* long mode, no-execute */
    wrmsr
    movl %cr0, %eax
    orl $((1 << 31) | (1 << 16) | 1), %eax  /* paging, write-protect, protected mode */
    movl %eax, %cr0
    lgdt __unikernel_boot_gdt_ptr
    ljmp $0x08, $2f

    .code64
2:  movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    leaq __boot_stack_top(%rip), %rsp
    xorl %ebp, %ebp
    movl %esi, %edi
    call {boot_main}
    ud2

    .balign 8
__unikernel_boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 64-bit code */
    .quad 0x00cf92000000ffff        /* data */
__unikernel_boot_gdt_ptr:
    .word __unikernel_boot_gdt_ptr - __unikernel_boot_gdt - 1
    .long __unikernel_boot_gdt

    .section .bss.boot_page_tables, "aw", @nobits
    .balign 4096
__unikernel_boot_pml4: .skip 4096
__unikernel_boot_pdpt: .skip 4096
__unikernel_boot_pd:   .skip 4096
    .text
"#,
    boot_main = sym crate::boot_main,
    options(att_syntax)
);
