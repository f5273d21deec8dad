//! The console on COM1, and on its receive side the VMM's word that the
//! guest was restored from a snapshot ([`unikernel_core::restore`]).
//!
//! The UART is not programmed: QEMU and Firecracker power it up ready to
//! transmit, and programming it costs eight port writes, each a VM exit
//! (about 2 ms in all under nested KVM here).

use spin::Mutex;
use uart_16550::SerialPort;
use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;
/// COM1's ISA interrupt line.
pub const IRQ: u8 = 4;
/// Interrupt enable register: bit 0 asks for an interrupt on received data.
const IER: u16 = COM1 + 1;
/// Line status register: bit 0 says a received byte waits.
const LSR: u16 = COM1 + 5;

// SAFETY: COM1 is the standard port of the first UART on PC machines, and
// this is its only user.
static PORT: Mutex<SerialPort> = Mutex::new(unsafe { SerialPort::new(COM1) });

pub fn write(bytes: &[u8]) {
    let mut port = PORT.lock();
    for &b in bytes {
        if b == b'\n' {
            port.send(b'\r');
        }
        port.send(b);
    }
}

/// For the fault path, which may have interrupted a writer.
///
/// # Safety
/// The interrupted writer must never resume.
pub unsafe fn force_unlock() {
    // SAFETY: forwarded to the caller.
    unsafe { PORT.force_unlock() };
}

/// Asks COM1 for an interrupt when a byte arrives (routed by `clock`).
pub fn listen() {
    // SAFETY: COM1's interrupt enable register; only received data.
    unsafe { Port::<u8>::new(IER).write(0x01) };
}

/// COM1's interrupt: drains what arrived; the restore signal among it
/// fixes the wall clock, then tells the runtime.
pub fn received() {
    let mut restored = false;
    // SAFETY: reading LSR and the receive buffer has no effect beyond
    // taking the byte; interrupts are on only in the idle halt, so no
    // writer holds `PORT` here.
    unsafe {
        while Port::<u8>::new(LSR).read() & 1 != 0 {
            restored |= Port::<u8>::new(COM1).read() == unikernel_core::restore::SIGNAL;
        }
    }
    if restored {
        crate::clock::get().rebase_wall_clock();
        unikernel_core::restore::restored();
    }
}
