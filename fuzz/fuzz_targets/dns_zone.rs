#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| unikernel_fuzz::dns::master_file(data));
