#![cfg_attr(target_os = "none", no_std, no_main)]

unikernel::test_main!(unikernel_entropy::entropy);

#[unikernel::test]
fn returns_ok() -> Result<(), unikernel::Error> {
    Ok(())
}

#[unikernel::test]
fn plain() {}
