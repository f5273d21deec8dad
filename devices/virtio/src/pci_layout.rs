//! Where a PCI device says its structures are, checked: BAR indices,
//! capability offsets and structure offsets all come from the device, and
//! a device that lies must be refused, not given a pointer outside its BAR.

/// A memory BAR as assigned: where it starts and how many bytes it decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    pub address: u64,
    pub size: u64,
}

/// The configuration-space offset of the field `field` bytes into the
/// capability at `capability`; `None` past the 256-byte space.
pub fn capability_field(capability: u8, field: u8) -> Option<u8> {
    capability.checked_add(field)
}

/// The address of a structure of `len` bytes that the device places
/// `offset` bytes into BAR `index`; `None` unless the BAR exists, is a
/// memory BAR, and holds the whole structure.
pub fn locate(bars: &[Option<Bar>], index: u32, offset: u32, len: u64) -> Option<u64> {
    let bar = (*bars.get(usize::try_from(index).ok()?)?)?;
    let end = u64::from(offset).checked_add(len)?;
    (end <= bar.size).then(|| bar.address.checked_add(u64::from(offset))).flatten()
}

/// Where a memory BAR of `size` bytes goes: the first multiple of its
/// (natural) alignment at or after `next`, if the BAR then ends by `end`.
pub fn place(next: u64, size: u64, end: u64) -> Option<u64> {
    let address = next.checked_next_multiple_of(size.max(4096))?;
    (address.checked_add(size)? <= end).then_some(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARS: [Option<Bar>; 6] = [
        None,
        Some(Bar { address: 0xc000_0000, size: 0x4000 }),
        None,
        None,
        Some(Bar { address: u64::MAX - 15, size: 0x1000 }),
        None,
    ];

    #[test]
    fn a_structure_inside_its_bar_is_found() {
        assert_eq!(locate(&BARS, 1, 0x3000, 0x1000), Some(0xc000_3000));
        assert_eq!(locate(&BARS, 1, 0, 16), Some(0xc000_0000));
    }

    #[test]
    fn a_missing_or_out_of_range_bar_index_is_refused() {
        assert_eq!(locate(&BARS, 0, 0, 16), None); // no such BAR
        assert_eq!(locate(&BARS, 6, 0, 16), None); // the MSI-X BIR allows 6 and 7
        assert_eq!(locate(&BARS, 0xff, 0, 16), None);
        assert_eq!(locate(&BARS, u32::MAX, 0, 16), None);
    }

    #[test]
    fn a_structure_past_the_end_of_its_bar_is_refused() {
        assert_eq!(locate(&BARS, 1, 0x3ff1, 16), None);
        assert_eq!(locate(&BARS, 1, u32::MAX, 16), None);
        assert_eq!(locate(&BARS, 1, 0, u64::MAX), None); // offset + len overflows
    }

    #[test]
    fn an_address_that_would_wrap_is_refused() {
        assert_eq!(locate(&BARS, 4, 16, 16), None);
    }

    #[test]
    fn capability_fields_past_the_configuration_space_are_refused() {
        assert_eq!(capability_field(0x40, 8), Some(0x48));
        assert_eq!(capability_field(0xfc, 4), None);
        assert_eq!(capability_field(0xff, 8), None);
    }

    #[test]
    fn bars_are_placed_aligned_inside_the_window_or_refused() {
        assert_eq!(place(0x1000, 0x4000, 0x10_0000), Some(0x4000));
        assert_eq!(place(0x1, 0x10, 0x10_0000), Some(0x1000)); // at least page-aligned
        assert_eq!(place(0xf_f000, 0x2000, 0x10_0000), None); // ends past the window
        assert_eq!(place(0x1000, 1 << 63, u64::MAX), None); // a huge BAR: no overflow
        assert_eq!(place(u64::MAX - 10, 0x1000, u64::MAX), None);
    }
}
