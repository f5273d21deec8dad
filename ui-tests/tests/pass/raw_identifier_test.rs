#![cfg_attr(target_os = "none", no_std, no_main)]

unikernel::test_main!();

#[unikernel::test]
fn r#match() {}
