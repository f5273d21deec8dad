//! Power off through PSCI (`SYSTEM_OFF`), with the `smccc` crate's calls,
//! by the conduit the device tree names. PSCI carries no status: the
//! platform prints it on the console first (`exit::ConsoleLine`), which
//! the runner reads back.

use crate::devicetree::Conduit;
use core::sync::atomic::{AtomicU8, Ordering};

/// 0: none known; 1: HVC; 2: SMC.
static CONDUIT: AtomicU8 = AtomicU8::new(0);

pub fn set_conduit(conduit: Option<Conduit>) {
    let value = match conduit {
        None => 0,
        Some(Conduit::Hvc) => 1,
        Some(Conduit::Smc) => 2,
    };
    CONDUIT.store(value, Ordering::Relaxed);
}

/// Powers the machine off; without PSCI (or if the call returns) the CPU
/// halts with interrupts masked, for good.
pub fn system_off() -> ! {
    let result = match CONDUIT.load(Ordering::Relaxed) {
        1 => smccc::psci::system_off::<smccc::Hvc>(),
        2 => smccc::psci::system_off::<smccc::Smc>(),
        _ => Ok(()),
    };
    if let Err(e) = result {
        unikernel_core::println!("PSCI SYSTEM_OFF failed: {e:?}; halting");
    }
    loop {
        aarch64_cpu::asm::wfi();
    }
}
