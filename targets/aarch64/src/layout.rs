//! The addresses the linker script (`unikernel.ld`) defines.

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __boot_stack_guard: u8;
    static __boot_stack_top: u8;
    static __image_end: u8;
}

macro_rules! symbol_addr {
    ($($name:ident => $sym:ident),* $(,)?) => {$(
        pub fn $name() -> u64 {
            // Only the address of the linker symbol is taken, never its value.
            (&raw const $sym) as u64
        }
    )*};
}

symbol_addr! {
    image_start => __image_start,
    text_end => __text_end,
    rodata_end => __rodata_end,
    boot_stack_guard => __boot_stack_guard,
    boot_stack_top => __boot_stack_top,
    image_end => __image_end,
}
