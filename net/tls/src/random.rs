//! Randomness for TLS from the `entropy` component: rustls's own draws
//! (server random, ticket keys) through [`EntropyRandom`], and on bare
//! metal the getrandom 0.2 backend that rustls-rustcrypto's key shares and
//! ECDSA nonces read through `rand_core::OsRng`.

use rustls::crypto::{GetRandomFailed, SecureRandom};
use unikernel_core::component::Handle;
use unikernel_entropy::Entropy;

/// rustls's random source: the entropy component's generator.
#[derive(Debug)]
pub(crate) struct EntropyRandom;

impl SecureRandom for EntropyRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        fill(buf).map_err(|()| GetRandomFailed)
    }
}

/// Fills `buf` from the entropy component; fails when it has not started
/// (the config builder takes an `Entropy` handle, so a server has it).
fn fill(buf: &mut [u8]) -> Result<(), ()> {
    let rng = Entropy::take().map_err(drop)?;
    rng.fill(buf).map_err(drop)
}

#[cfg(target_os = "none")]
fn getrandom02(buf: &mut [u8]) -> Result<(), getrandom02::Error> {
    fill(buf).map_err(|()| getrandom02::Error::UNSUPPORTED)
}

// Hosted, getrandom 0.2 reads the OS, as the entropy component does there.
#[cfg(target_os = "none")]
getrandom02::register_custom_getrandom!(getrandom02);
