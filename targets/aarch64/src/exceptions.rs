//! The exception vectors. IRQs go to the GIC's handler (set when the GIC
//! comes up, so images without interrupts do not link it); everything else
//! is fatal: a crash report (the syndrome decoded, registers, a backtrace
//! the runner symbolizes) and `exit::FAULT`.
//!
//! Code runs on SP_EL0 and exceptions on SP_EL1 (the boot stack), so a
//! stack overflow is reported from a stack with room. IRQs are unmasked
//! only inside `clock::idle`'s wait, an assembly block that clobbers every
//! caller-saved register, so the handler need not save FP/SIMD state.

use crate::paging;
use core::sync::atomic::{AtomicUsize, Ordering};
use unikernel_core::crash::CodeLine;
use unikernel_core::{exit, println};

/// Registers as the entry code saves them, lowest address first.
#[repr(C)]
pub struct Frame {
    x: [u64; 31],
    elr: u64,
    spsr: u64,
    sp_el0: u64,
}

const FRAME_SIZE: usize = size_of::<Frame>();
const _: () = assert!(FRAME_SIZE.is_multiple_of(16), "the stack stays 16-byte aligned");

core::arch::global_asm!(
    r#"
    .macro VECTOR kind
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       __unikernel_trap
    .endm

    .section .text.unikernel_vectors, "ax"
    .balign 0x800
    .global __unikernel_vectors
__unikernel_vectors:
    VECTOR 0
    VECTOR 1
    VECTOR 2
    VECTOR 3
    VECTOR 4
    VECTOR 5
    VECTOR 6
    VECTOR 7
    VECTOR 8
    VECTOR 9
    VECTOR 10
    VECTOR 11
    VECTOR 12
    VECTOR 13
    VECTOR 14
    VECTOR 15

__unikernel_trap:
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    mrs     x1, elr_el1
    stp     x30, x1, [sp, #16 * 15]
    mrs     x1, spsr_el1
    mrs     x2, sp_el0
    stp     x1, x2, [sp, #16 * 16]
    mov     x1, sp
    bl      {trap}
    ldp     x1, x2, [sp, #16 * 16]
    msr     spsr_el1, x1
    ldp     x30, x1, [sp, #16 * 15]
    msr     elr_el1, x1
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x19, [sp, #16 * 9]
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x28, x29, [sp, #16 * 14]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{frame}
    eret
"#,
    frame = const FRAME_SIZE,
    trap = sym trap,
);

/// The IRQ handler, 0 until the GIC is up.
static IRQ_HANDLER: AtomicUsize = AtomicUsize::new(0);

pub fn set_irq_handler(handler: fn()) {
    IRQ_HANDLER.store(handler as usize, Ordering::Release);
}

/// Vector `kind`: bits 3–2 say from where (current EL on SP_EL0, current EL
/// on SP_EL1, lower EL in AArch64, in AArch32), bits 1–0 what.
const SOURCES: [&str; 4] = ["EL1 on SP_EL0", "EL1 on SP_EL1", "EL0 (AArch64)", "EL0 (AArch32)"];
const KINDS: [&str; 4] = ["synchronous exception", "IRQ", "FIQ", "SError"];
const IRQ: u64 = 1;

extern "C" fn trap(kind: u64, frame: &mut Frame) {
    if kind & 3 == IRQ {
        match IRQ_HANDLER.load(Ordering::Acquire) {
            0 => unikernel_core::interrupt::count_unexpected(),
            handler => {
                // SAFETY: only `set_irq_handler` stores here, a `fn()`.
                let handler = unsafe { core::mem::transmute::<usize, fn()>(handler) };
                handler()
            }
        }
        return;
    }
    // The console takes no lock: the interrupted code cannot block the report.
    report(kind, frame);
    exit::exit(exit::FAULT)
}

fn report(kind: u64, f: &Frame) {
    let esr: u64;
    let far: u64;
    // SAFETY: reading the syndrome and fault address registers has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, esr_el1", "mrs {}, far_el1", out(reg) esr, out(reg) far, options(nomem, nostack))
    };
    let class = (esr >> 26) & 0x3f;
    println!(
        "\n*** CPU exception: {} ({}, ESR {esr:#x} class {class:#x}) from {}",
        class_name(class, kind),
        KINDS[kind as usize & 3],
        SOURCES[(kind as usize >> 2) & 3]
    );
    println!("{}", CodeLine::At(f.elr));
    if matches!(class, 0x20 | 0x21 | 0x24 | 0x25) {
        let what = match paging::guard_page_of(far) {
            Some(overflow) => overflow,
            None if far < 4096 => "null pointer dereference",
            None => fault_cause(esr),
        };
        println!("    far {far:#018x} ({what})");
    }
    for row in f.x.chunks(4).enumerate() {
        let (i, regs) = row;
        unikernel_core::print!("   ");
        for (j, value) in regs.iter().enumerate() {
            unikernel_core::print!(" x{:<2} {value:#018x}", i * 4 + j);
        }
        println!();
    }
    println!("    sp  {:#018x} spsr {:#x}", f.sp_el0, f.spsr);
    unikernel_core::crash::backtrace(f.x[29], paging::is_mapped);
}

/// The exception class of ESR_EL1 (Arm ARM D17.2.37), named.
fn class_name(class: u64, kind: u64) -> &'static str {
    if kind & 3 != 0 {
        return KINDS[kind as usize & 3];
    }
    match class {
        0x00 => "undefined instruction",
        0x07 => "FP/SIMD access trapped",
        0x0e => "illegal execution state",
        0x15 => "SVC instruction",
        0x18 => "system register access trapped",
        0x20 | 0x21 => "instruction abort",
        0x22 => "PC alignment fault",
        0x24 | 0x25 => "data abort",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x3c => "BRK instruction",
        _ => "exception",
    }
}

/// The fault status code of an abort (ISS bits 5–0; for translation,
/// access-flag and permission faults bits 1–0 are the table level), and
/// whether it wrote.
fn fault_cause(esr: u64) -> &'static str {
    let instruction = (esr >> 26) & 0x3f <= 0x21;
    let write = !instruction && esr & (1 << 6) != 0;
    let status = esr & 0x3f;
    match (status >> 2, status) {
        (1, _) if write => "write to an unmapped page",
        (1, _) => "read from an unmapped page",
        (3, _) if write => "write to a read-only page",
        (3, _) if instruction => "instruction fetch from a non-executable page",
        (3, _) => "permission fault on read",
        (2, _) => "access flag fault",
        (_, 0x21) => "alignment fault",
        (_, 0x10) => "synchronous external abort: no device or memory there",
        _ => "see the fault status code in ESR",
    }
}
