//! CPU exceptions: every vector 0–31 enters through a small stub that saves
//! the registers into a [`TrapFrame`], then [`exception`] prints a crash
//! report and exits with `exit::FAULT`. Written with naked functions because
//! `extern "x86-interrupt"` is not stable.

use crate::{gdt, paging, serial};
use core::arch::naked_asm;
use unikernel_core::{console, exit, println};
use x86_64::VirtAddr;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::InterruptDescriptorTable;

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

/// Saves the registers, calls [`exception`], and returns from the
/// interrupt if it ever returns. Entered with the vector and an error code
/// (real or 0) pushed; the stack is 16-byte aligned at the call.
#[unsafe(naked)]
extern "C" fn common_entry() {
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
        handler = sym exception,
    )
}

macro_rules! stubs {
    ($($vector:literal $kind:ident),* $(,)?) => {
        /// Entry stubs, indexed by vector.
        const STUBS: [extern "C" fn(); 32] = [$(stubs!(@stub $vector $kind)),*];
    };
    (@stub $vector:literal no_code) => {{
        #[unsafe(naked)]
        extern "C" fn stub() {
            naked_asm!("push 0", concat!("push ", $vector), "jmp {common}", common = sym common_entry)
        }
        stub
    }};
    (@stub $vector:literal code) => {{
        #[unsafe(naked)]
        extern "C" fn stub() {
            naked_asm!(concat!("push ", $vector), "jmp {common}", common = sym common_entry)
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

/// Filled in place: building it on the stack and moving it costs two 4 KiB
/// copies, which are slow under emulation.
static mut IDT: InterruptDescriptorTable = InterruptDescriptorTable::new();

pub fn init() {
    // SAFETY: runs once during boot, on one CPU, before interrupts or
    // exceptions can consult the table.
    let idt = unsafe { &mut *(&raw mut IDT) };
    {
        let addr = |v: usize| VirtAddr::new(STUBS[v] as usize as u64);
        // SAFETY: each stub is a valid handler for its vector: it pushes a
        // dummy error code exactly for the vectors where the CPU pushes none.
        unsafe {
            idt.divide_error.set_handler_addr(addr(0));
            idt.debug.set_handler_addr(addr(1));
            idt.non_maskable_interrupt.set_handler_addr(addr(2));
            idt.breakpoint.set_handler_addr(addr(3));
            idt.overflow.set_handler_addr(addr(4));
            idt.bound_range_exceeded.set_handler_addr(addr(5));
            idt.invalid_opcode.set_handler_addr(addr(6));
            idt.device_not_available.set_handler_addr(addr(7));
            idt.double_fault.set_handler_addr(addr(8)).set_stack_index(gdt::DOUBLE_FAULT_IST);
            idt.invalid_tss.set_handler_addr(addr(10));
            idt.segment_not_present.set_handler_addr(addr(11));
            idt.stack_segment_fault.set_handler_addr(addr(12));
            idt.general_protection_fault.set_handler_addr(addr(13));
            idt.page_fault.set_handler_addr(addr(14));
            idt.x87_floating_point.set_handler_addr(addr(16));
            idt.alignment_check.set_handler_addr(addr(17));
            idt.machine_check.set_handler_addr(addr(18));
            idt.simd_floating_point.set_handler_addr(addr(19));
            idt.virtualization.set_handler_addr(addr(20));
            idt.cp_protection_exception.set_handler_addr(addr(21));
            idt.hv_injection_exception.set_handler_addr(addr(28));
            idt.vmm_communication_exception.set_handler_addr(addr(29));
            idt.security_exception.set_handler_addr(addr(30));
        }
    }
    idt.load();
}

/// Every CPU exception is fatal for now: report and exit.
extern "C" fn exception(frame: &mut TrapFrame) {
    // SAFETY: the interrupted code never resumes, so its locks are dead.
    unsafe {
        serial::force_unlock();
        console::force_unlock();
    }
    report(frame);
    exit::exit(exit::FAULT)
}

fn report(f: &TrapFrame) {
    let (name, mnemonic) = NAMES[f.vector as usize & 31];
    println!("\n*** CPU exception: {name} ({mnemonic}, vector {}), error code {:#x}", f.vector, f.error_code);
    println!("    at rip {:#018x}", f.rip);
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
