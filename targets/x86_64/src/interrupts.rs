//! Every vector enters through a small stub and an entry that saves the
//! registers into a [`TrapFrame`]. CPU exceptions (0–31) print a crash
//! report and exit with `exit::FAULT`; interrupts (32–255) are the APIC
//! timer, device lines routed by the I/O APIC, and strays, which are
//! counted and reported but not fatal. Written with naked functions and
//! assembly because `extern "x86-interrupt"` is not stable.

use crate::boot_cell::BootCell;
use crate::{apic, gdt, paging, serial};
use core::arch::naked_asm;
use unikernel_core::crash::CodeLine;
use unikernel_core::{exit, println};
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, Segment};
use x86_64::instructions::tables::lidt;
use x86_64::registers::control::Cr2;
use x86_64::structures::DescriptorTablePointer;
use x86_64::structures::gdt::SegmentSelector;

/// Registers as the stubs leave them on the stack, lowest address first.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    r11: u64,
    r10: u64,
    r9: u64,
    r8: u64,
    rbp: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    rcx: u64,
    rbx: u64,
    rax: u64,
    vector: u64,
    error_code: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

/// An entry that saves the registers, calls `$handler` with the
/// [`TrapFrame`], restores them and returns from the interrupt. Entered
/// from a stub with the vector and an error code (real or 0) pushed; the
/// stack is 16-byte aligned at the call.
macro_rules! entry {
    ($name:ident => $handler:path) => {
        #[unsafe(naked)]
        extern "C" fn $name() {
            naked_asm!(
                "push rax", "push rbx", "push rcx", "push rdx", "push rsi", "push rdi", "push rbp",
                "push r8", "push r9", "push r10", "push r11", "push r12", "push r13", "push r14", "push r15",
                "mov rdi, rsp",
                "cld",
                "call {handler}",
                "pop r15", "pop r14", "pop r13", "pop r12", "pop r11", "pop r10", "pop r9", "pop r8",
                "pop rbp", "pop rdi", "pop rsi", "pop rdx", "pop rcx", "pop rbx", "pop rax",
                "add rsp, 16",
                "iretq",
                handler = sym $handler,
            )
        }
    };
}

// Two entries, so that an image whose interrupt gates are never installed
// (it never reads the clock nor registers an interrupt) links neither the
// interrupt stubs nor what `interrupt` calls: the APICs, the PIT, the RTC.
entry!(exception_entry => exception);
entry!(interrupt_entry => interrupt);

macro_rules! stubs {
    ($($vector:literal $kind:ident),* $(,)?) => {
        /// Entry stubs, indexed by vector.
        const STUBS: [extern "C" fn(); 32] = [$(stubs!(@stub $vector $kind)),*];
    };
    (@stub $vector:literal no_code) => {{
        #[unsafe(naked)]
        extern "C" fn stub() {
            naked_asm!("push 0", concat!("push ", $vector), "jmp {common}", common = sym exception_entry)
        }
        stub
    }};
    (@stub $vector:literal code) => {{
        #[unsafe(naked)]
        extern "C" fn stub() {
            naked_asm!(concat!("push ", $vector), "jmp {common}", common = sym exception_entry)
        }
        stub
    }};
}

stubs! {
    0 no_code, 1 no_code, 2 no_code, 3 no_code, 4 no_code, 5 no_code, 6 no_code, 7 no_code,
    8 code, 9 no_code, 10 code, 11 code, 12 code, 13 code, 14 code, 15 no_code,
    16 no_code, 17 code, 18 no_code, 19 no_code, 20 no_code, 21 code, 22 no_code, 23 no_code,
    24 no_code, 25 no_code, 26 no_code, 27 no_code, 28 no_code, 29 code, 30 code, 31 no_code,
}

/// COM1's receive interrupt (see `serial::received`): outside the device
/// lines, so the console counts as no driver's interrupt source.
pub const CONSOLE_VECTOR: u8 = 0xf0;

/// First device vector: line `n` of the I/O APIC arrives as `IRQ_BASE + n`.
pub const IRQ_BASE: u8 = 48;
/// Each stub of vectors 32–255 is 8-byte aligned and 7 bytes long, so
/// vector `v` enters at `__unikernel_irq_stubs + (v - 32) * 8`: a stub
/// pushes `v - 128`, which fits a sign-extended byte for every vector
/// (a 2-byte push), and the shared tail turns that into the zero error
/// code and the vector `interrupt_entry` expects (224 × 8 bytes, not 16).
const IRQ_STUB_SIZE: usize = 8;

core::arch::global_asm!(
    r#"
    .pushsection .text.unikernel_irq_stubs, "ax", @progbits
    .balign 8
    .global __unikernel_irq_stubs
__unikernel_irq_stubs:
    .set vector, 32
    .rept 224
    .balign 8
    pushq $(vector - 128)
    jmp __unikernel_irq_stubs_tail
    .set vector, vector + 1
    .endr
    .global __unikernel_irq_stubs_end
__unikernel_irq_stubs_end:
__unikernel_irq_stubs_tail:
    pushq (%rsp)
    movq $0, 8(%rsp)
    addq $128, (%rsp)
    jmp {common}
    .popsection
"#,
    common = sym interrupt_entry,
    options(att_syntax)
);

unsafe extern "C" {
    static __unikernel_irq_stubs: u8;
    static __unikernel_irq_stubs_end: u8;
}

const NAMES: [(&str, &str); 32] = [
    ("divide error", "#DE"),
    ("debug", "#DB"),
    ("non-maskable interrupt", "NMI"),
    ("breakpoint", "#BP"),
    ("overflow", "#OF"),
    ("bound range exceeded", "#BR"),
    ("invalid opcode", "#UD"),
    ("device not available", "#NM"),
    ("double fault", "#DF"),
    ("coprocessor segment overrun", "-"),
    ("invalid TSS", "#TS"),
    ("segment not present", "#NP"),
    ("stack-segment fault", "#SS"),
    ("general protection fault", "#GP"),
    ("page fault", "#PF"),
    ("reserved", "-"),
    ("x87 floating-point error", "#MF"),
    ("alignment check", "#AC"),
    ("machine check", "#MC"),
    ("SIMD floating-point error", "#XM"),
    ("virtualization exception", "#VE"),
    ("control protection", "#CP"),
    ("reserved", "-"),
    ("reserved", "-"),
    ("reserved", "-"),
    ("reserved", "-"),
    ("reserved", "-"),
    ("reserved", "-"),
    ("hypervisor injection", "#HV"),
    ("VMM communication", "#VC"),
    ("security exception", "#SX"),
    ("reserved", "-"),
];

/// An interrupt gate (Intel SDM vol. 3, 6.14.1). The IDT is a plain array
/// of these rather than `x86_64`'s `InterruptDescriptorTable`, whose typed
/// per-exception fields take 23 separate calls to fill, measured at about
/// 0.5 ms of boot under TCG; one loop over a uniform array is cheaper, and
/// device vectors (32–255) will use the same array.
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    /// Interrupt stack table slot, 1-based; 0 keeps the current stack.
    ist: u8,
    /// Present, ring 0, 64-bit interrupt gate (interrupts stay disabled).
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const MISSING: Self =
        Self { offset_low: 0, selector: 0, ist: 0, attributes: 0, offset_mid: 0, offset_high: 0, reserved: 0 };
    const PRESENT_INTERRUPT_GATE: u8 = 0x8e;

    fn new(handler: u64, selector: SegmentSelector, ist: u8) -> Self {
        Self {
            offset_low: handler as u16,
            selector: selector.0,
            ist,
            attributes: Self::PRESENT_INTERRUPT_GATE,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: BootCell<Idt> = BootCell::new(Idt([Gate::MISSING; 256]));

pub fn init() {
    let code = CS::get_reg();
    // SAFETY: runs once during boot, on one CPU, before any exception can
    // consult the table.
    let idt = unsafe { &mut *IDT.get() };
    for (vector, stub) in STUBS.iter().enumerate() {
        // Double faults switch to their own stack: a stack overflow must
        // not fault again while pushing the exception frame.
        let ist = if vector == 8 { gdt::DOUBLE_FAULT_IST as u8 + 1 } else { 0 };
        idt.0[vector] = Gate::new(*stub as usize as u64, code, ist);
    }
    let pointer = DescriptorTablePointer { limit: (size_of::<Idt>() - 1) as u16, base: VirtAddr::from_ptr(idt) };
    // SAFETY: the table is static and holds valid gates for vectors 0–31;
    // 32–255 are filled in by `install_interrupt_gates`, and until then
    // raise #NP, which is reported.
    unsafe { lidt(&pointer) };
}

/// Installs the gates of vectors 32–255, when the APICs come up (see
/// `clock`): images that never use interrupts do not pay for the loop at
/// boot. Until then those vectors are not present and raise #NP, reported
/// like any exception.
pub fn install_interrupt_gates() {
    let code = CS::get_reg();
    // SAFETY: one CPU with interrupts off; the CPU reads a gate only when
    // its vector fires, and none of these can before the APICs are set up.
    let idt = unsafe { &mut *IDT.get() };
    let (stubs, end) = ((&raw const __unikernel_irq_stubs) as u64, (&raw const __unikernel_irq_stubs_end) as u64);
    assert!(end - stubs <= (224 * IRQ_STUB_SIZE) as u64, "an interrupt stub outgrew its 8 bytes");
    for (i, gate) in idt.0[32..].iter_mut().enumerate() {
        *gate = Gate::new(stubs + (i * IRQ_STUB_SIZE) as u64, code, 0);
    }
}

/// Vectors 32–255, entered with interrupts off.
extern "C" fn interrupt(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    let apic = crate::clock::get().apic;
    let lines = IRQ_BASE..IRQ_BASE + unikernel_core::interrupt::LINES as u8;
    match vector {
        // Spurious interrupts are not in service: no end-of-interrupt.
        apic::SPURIOUS_VECTOR => unikernel_core::interrupt::count_unexpected(),
        apic::TIMER_VECTOR => apic.end_of_interrupt(),
        CONSOLE_VECTOR => {
            apic.end_of_interrupt();
            crate::serial::received();
        }
        v if lines.contains(&v) => {
            // Handlers run with interrupts off, so acknowledging first is
            // safe (a level-triggered line still asserted is delivered
            // again, once, after the handler quieted the device), and a panicking handler cannot
            // leave its vector in service, blocking lower-priority ones
            // (the timer) for the rest of the run.
            apic.end_of_interrupt();
            if !unikernel_core::interrupt::dispatch(v - IRQ_BASE) {
                println!("interrupt: line {} fired with no handler", v - IRQ_BASE);
            }
        }
        v => {
            // Harmless when nothing is in service (a software `int`).
            apic.end_of_interrupt();
            unikernel_core::interrupt::count_unexpected();
            println!("interrupt: unexpected vector {v} ignored");
        }
    }
}

/// CPU exceptions (vectors 0–31) are fatal: report and exit.
extern "C" fn exception(frame: &mut TrapFrame) -> ! {
    // SAFETY: the interrupted code never resumes, so its locks are dead.
    unsafe { serial::force_unlock() };
    report(frame);
    exit::exit(exit::FAULT)
}

fn report(f: &TrapFrame) {
    let (name, mnemonic) = NAMES[f.vector as usize & 31];
    println!("\n*** CPU exception: {name} ({mnemonic}, vector {}), error code {:#x}", f.vector, f.error_code);
    println!("{}", CodeLine::At(f.rip));
    if f.vector == 14 || f.vector == 8 {
        let cr2 = Cr2::read_raw();
        let what = match paging::guard_page_of(cr2) {
            Some(overflow) => overflow,
            None if f.vector == 14 && cr2 < 4096 => "null pointer dereference",
            None if f.vector == 14 => page_fault_cause(f.error_code),
            None => "address of the last page fault",
        };
        println!("    cr2 {cr2:#018x} ({what})");
    }
    println!("    rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}", f.rax, f.rbx, f.rcx, f.rdx);
    println!("    rsi {:#018x} rdi {:#018x} rbp {:#018x} rsp {:#018x}", f.rsi, f.rdi, f.rbp, f.rsp);
    println!("    r8  {:#018x} r9  {:#018x} r10 {:#018x} r11 {:#018x}", f.r8, f.r9, f.r10, f.r11);
    println!("    r12 {:#018x} r13 {:#018x} r14 {:#018x} r15 {:#018x}", f.r12, f.r13, f.r14, f.r15);
    println!("    rflags {:#x} cs {:#x} ss {:#x}", f.rflags, f.cs, f.ss);
    unikernel_core::print!("    stack:");
    for i in 0..6 {
        let addr = f.rsp.wrapping_add(i * 8);
        if !paging::is_mapped(addr) {
            unikernel_core::print!(" (unmapped)");
            break;
        }
        // SAFETY: the address is mapped (checked just above) and aligned
        // like the interrupted stack pointer.
        unikernel_core::print!(" {:#x}", unsafe { (addr as *const u64).read_unaligned() });
    }
    println!();
    unikernel_core::crash::backtrace(f.rbp, paging::is_mapped);
}

fn page_fault_cause(code: u64) -> &'static str {
    match (code & 1 != 0, code & 2 != 0, code & 16 != 0) {
        (_, _, true) => "instruction fetch from a non-executable page",
        (true, true, _) => "write to a read-only page",
        (true, false, _) => "protection violation on read",
        (false, true, _) => "write to an unmapped page",
        (false, false, _) => "read from an unmapped page",
    }
}
