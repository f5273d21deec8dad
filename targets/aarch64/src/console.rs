//! The PL011 UART the device tree names as the console: transmit only,
//! polled. Ten lines of MMIO, so no driver crate: `arm-pl011-uart` would
//! add its register map and error types for a loop on one flag.

use core::sync::atomic::{AtomicU64, Ordering};

/// Data register; the flag register's bit 5 says the transmit FIFO is full.
const DR: u64 = 0x00;
const FR: u64 = 0x18;
const FR_TXFF: u32 = 1 << 5;

/// 0 until the device tree is read: nothing prints before that.
static BASE: AtomicU64 = AtomicU64::new(0);

pub fn init(base: u64) {
    BASE.store(base, Ordering::Relaxed);
}

pub fn write(bytes: &[u8]) {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    for &byte in bytes {
        // SAFETY: `base` is the PL011 the device tree names, mapped as
        // device memory below RAM; these registers have no side effects
        // beyond sending the byte.
        unsafe {
            while ((base + FR) as *const u32).read_volatile() & FR_TXFF != 0 {
                core::hint::spin_loop();
            }
            ((base + DR) as *mut u32).write_volatile(u32::from(byte));
        }
    }
}
