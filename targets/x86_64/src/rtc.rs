//! The CMOS real-time clock: the wall clock at boot, to the second.

use unikernel_core::time::days_from_civil;
use x86_64::instructions::port::Port;

fn read(register: u8) -> u8 {
    let (mut index, mut data) = (Port::<u8>::new(0x70), Port::<u8>::new(0x71));
    // SAFETY: CMOS index/data ports; bit 7 of the index keeps NMIs enabled.
    unsafe {
        index.write(register & 0x7f);
        data.read()
    }
}

fn updating() -> bool {
    read(0x0a) & 0x80 != 0
}

/// Seconds since the Unix epoch, or `None` without a plausible RTC.
pub fn unix_seconds() -> Option<u64> {
    // A reading taken during an update can mix two seconds: read until two
    // consecutive readings agree, outside the update window (under 2 ms).
    // No RTC: the bus reads all ones.
    if read(0x0a) == 0xff {
        return None;
    }
    let snapshot = || {
        (0..100_000).find(|_| !updating())?;
        Some([0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32].map(read))
    };
    let mut a = snapshot()?;
    for _ in 0..10 {
        let b = snapshot()?;
        if a == b {
            break;
        }
        a = b;
    }
    let status_b = read(0x0b);
    let bcd = status_b & 0x04 == 0;
    let decode = |v: u8| if bcd { (v >> 4) * 10 + (v & 0x0f) } else { v };
    let [sec, min, hour_raw, day, month, year, century] = a;
    // In 12-hour mode bit 7 of the hour means PM, and 12 o'clock is 12.
    let hour = decode(hour_raw & 0x7f);
    let hour = if status_b & 0x02 != 0 { hour } else { hour % 12 + if hour_raw & 0x80 != 0 { 12 } else { 0 } };
    let (sec, min, day, month) = (decode(sec), decode(min), decode(day), decode(month));
    let century = match decode(century) {
        c @ 19..=21 => u64::from(c),
        _ => 20,
    };
    let year = century * 100 + u64::from(decode(year));
    if sec > 59 || min > 59 || hour > 23 || !(1..=31).contains(&day) || !(1..=12).contains(&month) {
        return None;
    }
    let days = days_from_civil(year as i64, u32::from(month), u32::from(day));
    Some(days as u64 * 86_400 + u64::from(hour) * 3600 + u64::from(min) * 60 + u64::from(sec))
}
