//! The crypto provider: rustls-rustcrypto's TLS 1.3 suites and key
//! exchanges, the entropy component's randomness, ECDSA keys only (so the
//! RSA and EdDSA signers stay out of the image).

use crate::random::EntropyRandom;
use alloc::sync::Arc;
use rustls::crypto::{CryptoProvider, KeyProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::SigningKey;
use rustls::{NamedGroup, SupportedCipherSuite};

/// Loads ECDSA (P-256, P-384) private keys, PKCS#8 or SEC1.
#[derive(Debug)]
struct EcdsaKeys;

impl KeyProvider for EcdsaKeys {
    fn load_private_key(&self, key: PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        rustls_rustcrypto::sign::any_ecdsa_type(&key)
    }
}

/// No client certificates are verified, so no verification algorithms.
static NO_VERIFICATION: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms { all: &[], mapping: &[] };

pub(crate) fn provider() -> CryptoProvider {
    let all = rustls_rustcrypto::provider();
    let tls13 = |suite: &SupportedCipherSuite| matches!(suite, SupportedCipherSuite::Tls13(_));
    CryptoProvider {
        cipher_suites: all.cipher_suites.into_iter().filter(tls13).collect(),
        // What TLS 1.3 clients offer first (curl, OpenSSL, browsers).
        kx_groups: all
            .kx_groups
            .into_iter()
            .filter(|g| matches!(g.name(), NamedGroup::X25519 | NamedGroup::secp256r1))
            .collect(),
        signature_verification_algorithms: NO_VERIFICATION,
        secure_random: &EntropyRandom,
        key_provider: &EcdsaKeys,
    }
}
