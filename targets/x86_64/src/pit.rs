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
/// Give up when this many reads in a row see the same count: a PIT ticks
/// every 0.84 µs, far more often than that many port reads take.
const STUCK_READS: u32 = 100_000;

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

/// Waits for the counter to move past `after` (or any first change), and
/// returns the new count with the TSC (midpoint of the port read) and APIC
/// counts taken at that moment. `None` when the counter is stuck.
fn next_tick(
    command: &mut Port<u8>,
    channel0: &mut Port<u8>,
    after: Option<u16>,
    apic: LocalApic,
) -> Option<(u16, u64, u32)> {
    let reference = after.unwrap_or_else(|| read_counter(command, channel0));
    for _ in 0..STUCK_READS {
        let before = rdtsc();
        let count = read_counter(command, channel0);
        let tsc_after = rdtsc();
        if count != reference {
            return Some((count, before + (tsc_after - before) / 2, apic.current_count()));
        }
    }
    None
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
    // Start on a tick edge so the window is whole ticks.
    let (start, tsc0, apic0) = next_tick(&mut command, &mut channel0, None, apic)?;
    let mut end = (start, tsc0, apic0);
    while start.wrapping_sub(end.0) < WINDOW_TICKS {
        end = next_tick(&mut command, &mut channel0, Some(end.0), apic)?;
    }
    let (now, tsc1, apic1) = end;
    apic.start_timer(0, true);
    let ticks = u64::from(start.wrapping_sub(now));
    Some(Rates { tsc_hz: (tsc1 - tsc0) * PIT_HZ / ticks, apic_hz: u64::from(apic0 - apic1) * PIT_HZ / ticks })
}
