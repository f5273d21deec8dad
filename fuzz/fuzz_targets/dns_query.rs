#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| unikernel_fuzz::dns::query(data));
