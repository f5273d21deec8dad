//! Where things are: the PCI window, and the addresses the linker script
//! (`unikernel.ld`) defines.

use core::ops::Range;

/// PCI memory BARs, placed by `unikernel-virtio` through the bus (q35 has
/// no RAM from 0xb000_0000 up; RAM there on other machines is left out of
/// the heap). Paging maps it uncached.
pub const PCI_WINDOW: Range<u64> = 0xc000_0000..0xc200_0000;

/// Where Firecracker puts its virtio-mmio devices (4 KiB each, from its
/// `MMIO_MEM_START`), announced on the kernel command line: one 2 MiB page,
/// room for 512. Paging maps it uncached.
pub const FIRECRACKER_MMIO: Range<u64> = 0xd000_0000..0xd020_0000;

unikernel_core::linker_symbols! {
    image_start => __image_start,
    text_end => __text_end,
    rodata_end => __rodata_end,
    boot_stack_guard => __boot_stack_guard,
    image_end => __image_end,
}
