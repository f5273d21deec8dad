//! A self-signed P-256 certificate for `localhost` and 127.0.0.1 with its
//! key, made by this crate's build script for each build (never stored in
//! the repository): for examples and tests, not for production.

/// The certificate, DER.
pub const CERT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cert.der"));
/// Its private key, PKCS#8 DER.
pub const KEY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/key.der"));
