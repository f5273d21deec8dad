//! The addresses the linker script (`unikernel.ld`) defines.

unikernel_core::linker_symbols! {
    image_start => __image_start,
    text_end => __text_end,
    rodata_end => __rodata_end,
    boot_stack_guard => __boot_stack_guard,
    boot_stack_top => __boot_stack_top,
    image_end => __image_end,
}
