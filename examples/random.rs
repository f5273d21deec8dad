//! Names the `entropy` component: `main` gets an `Entropy` handle. The
//! `hello` image, which names nothing, contains none of this code.
#![cfg_attr(target_os = "none", no_std, no_main)]

use unikernel::prelude::*;
use unikernel_entropy::Entropy;

#[unikernel]
fn main(rng: Entropy) -> Result<(), Error> {
    let (a, b) = (rng.u64()?, rng.u64()?);
    // Two equal 64-bit draws mean the source is broken, not unlucky.
    if a == b {
        return Err(Error::msg("the entropy source repeated itself"));
    }
    println!("random ({:?}): {a:016x} {b:016x}", rng.source());
    Ok(())
}
