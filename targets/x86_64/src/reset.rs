//! Resetting the machine when no exit device took the status (Firecracker
//! has none): the i8042 keyboard controller's reset line, which Firecracker
//! turns into the VM's end, then a triple fault, which every x86 VMM turns
//! into a reset (QEMU, with the runner's `-no-reboot`, into its exit).

use x86_64::VirtAddr;
use x86_64::instructions::port::Port;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;

/// The i8042's command port, and its command pulsing the CPU reset line.
const I8042_COMMAND: u16 = 0x64;
const PULSE_RESET: u8 = 0xfe;

pub fn machine() -> ! {
    x86_64::instructions::interrupts::disable();
    // SAFETY: a command to the keyboard controller; without one the write
    // is ignored, with one the machine resets and nothing runs after.
    unsafe { Port::<u8>::new(I8042_COMMAND).write(PULSE_RESET) };
    let empty = DescriptorTablePointer { limit: 0, base: VirtAddr::zero() };
    // SAFETY: with no interrupt descriptor at all, the breakpoint faults,
    // the fault double-faults and that triple-faults: the CPU resets. No
    // code runs after, so nothing depends on the table being valid.
    unsafe {
        lidt(&empty);
        core::arch::asm!("int3", options(noreturn));
    }
}
