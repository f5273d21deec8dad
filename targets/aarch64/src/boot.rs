//! The first instructions: at EL1 with the MMU off, as QEMU's `-kernel`
//! leaves an ELF. FP/SIMD must be on before any Rust code (the target
//! uses NEON registers), and the MMU before any atomic (exclusive accesses
//! to memory the MMU-off state treats as device memory are unpredictable).

use crate::paging;

core::arch::global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    mov     x19, x0
    // FP/SIMD at EL1 and EL0: CPACR_EL1.FPEN = 0b11.
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    adrp    x1, __unikernel_vectors
    add     x1, x1, :lo12:__unikernel_vectors
    msr     vbar_el1, x1
    adrp    x1, __boot_stack_top
    add     x1, x1, :lo12:__boot_stack_top
    mov     sp, x1
    ldr     x1, ={mair}
    msr     mair_el1, x1
    ldr     x1, ={tcr}
    msr     tcr_el1, x1
    adrp    x1, {boot_table}
    add     x1, x1, :lo12:{boot_table}
    msr     ttbr0_el1, x1
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    // MMU (M), data and instruction caches (C, I) on; alignment checks
    // (A) and write-implies-never-execute (WXN) off: paging.rs sets each
    // page's permissions.
    mrs     x1, sctlr_el1
    orr     x1, x1, #(1 << 0)
    orr     x1, x1, #(1 << 2)
    orr     x1, x1, #(1 << 12)
    bic     x1, x1, #(1 << 1)
    bic     x1, x1, #(1 << 19)
    msr     sctlr_el1, x1
    isb
    // Zero .bss: QEMU's ELF loader does, a loader of flat images may not.
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  mov     x0, x19
    mov     x29, xzr
    mov     x30, xzr
    bl      {main}
    b       .
"#,
    mair = const paging::MAIR,
    tcr = const paging::TCR,
    boot_table = sym paging::BOOT_TABLE,
    main = sym crate::boot_main,
);
