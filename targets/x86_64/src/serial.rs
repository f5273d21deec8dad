//! The console on COM1.
//!
//! The UART is not programmed: QEMU and Firecracker power it up ready to
//! transmit, and programming it costs eight port writes, each a VM exit
//! (about 2 ms in all under nested KVM here).

use spin::Mutex;
use uart_16550::SerialPort;

const COM1: u16 = 0x3f8;

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
