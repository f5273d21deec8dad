//! Calibrates the TSC and the APIC timer against the i8254 PIT, whose
//! 1.193182 MHz input is fixed by the PC architecture. Channel 0 is read
//! back with latch commands, so no interrupt and no speaker gate (port
//! 0x61, absent on microvm) are needed.

use crate::apic::LocalApic;
use x86_64::instructions::port::Port;

const PIT_HZ: u64 = 1_193_182;
/// 5 ms: long enough for 0.02% resolution, short enough not to show in a
/// first `Instant::now()`.
const WINDOW_TICKS: u16 = 5966;
/// Give up when the PIT does not count (no PIT): about 0.1 s of TSC.
const GIVE_UP_CYCLES: u64 = 300_000_000;

pub struct Rates {
    pub tsc_hz: u64,
    pub apic_hz: u64,
}

fn read_counter(command: &mut Port<u8>, channel0: &mut Port<u8>) -> u16 {
    // SAFETY: latch channel 0, then read its count low byte first.
    unsafe {
        command.write(0x00);
        let low = channel0.read();
        let high = channel0.read();
        u16::from_le_bytes([low, high])
    }
}

fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Measures TSC and APIC timer rates over a 5 ms PIT window, or `None`
/// when the PIT does not count.
pub fn calibrate(apic: LocalApic) -> Option<Rates> {
    let (mut command, mut channel0) = (Port::<u8>::new(0x43), Port::<u8>::new(0x40));
    // SAFETY: channel 0, lobyte/hibyte access, mode 0, count 0xffff: counts
    // down for 55 ms. Its interrupt line stays masked (ioapic::init).
    unsafe {
        command.write(0x30);
        channel0.write(0xff);
        channel0.write(0xff);
    }
    apic.start_timer(u32::MAX, true);
    let give_up = rdtsc() + GIVE_UP_CYCLES;
    let first = read_counter(&mut command, &mut channel0);
    // Start on a tick edge so the window is whole ticks.
    let mut start = first;
    while start == first {
        start = read_counter(&mut command, &mut channel0);
        if rdtsc() > give_up {
            return None;
        }
    }
    let (tsc0, apic0) = (rdtsc(), apic.current_count());
    let mut now = start;
    while start.wrapping_sub(now) < WINDOW_TICKS {
        now = read_counter(&mut command, &mut channel0);
        if rdtsc() > give_up {
            return None;
        }
    }
    let (tsc1, apic1) = (rdtsc(), apic.current_count());
    apic.start_timer(0, true);
    let ticks = u64::from(start.wrapping_sub(now));
    Some(Rates { tsc_hz: (tsc1 - tsc0) * PIT_HZ / ticks, apic_hz: u64::from(apic0 - apic1) * PIT_HZ / ticks })
}
