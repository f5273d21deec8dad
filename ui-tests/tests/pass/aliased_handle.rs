#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_entropy::Entropy as Rng;

// The handle's type may be named through an alias: it is the mention
// that starts the component.
#[unikernel]
fn main(rng: Rng) -> Result<(), Error> {
    rng.u64()?;
    Ok(())
}
