//! The server configuration: one certificate chain and key, TLS 1.3 only,
//! and the server names it answers for.

use crate::provider::provider;
use crate::time::WallClock;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use unikernel_entropy::Entropy;

/// Builds a TLS 1.3 server configuration for `chain` (leaf first) and its
/// ECDSA `key` (PKCS#8 or SEC1 DER). A client naming a server (SNI) other
/// than one of `names` gets a handshake-failure alert; clients that name
/// none (curl to an IP address) get the certificate. `rng` proves the image
/// has the entropy component, which every handshake draws from.
pub fn server_config(
    rng: Entropy,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    names: &[&str],
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let _ = rng;
    let key = provider().key_provider.load_private_key(key)?;
    // rustls-rustcrypto's keys cannot tell their public key, so rustls's
    // `keys_match` has nothing to compare: a mismatched pair fails clients.
    let certified = Arc::new(CertifiedKey::new(chain, key));
    let names = names.iter().map(|n| String::from(*n)).collect();
    config(Arc::new(ByName { names, certified }))
}

/// The configuration around a certificate `resolver` (unit tests pass
/// one without certificates: their handshakes fail before choosing).
pub(crate) fn config(resolver: Arc<dyn ResolvesServerCert>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_details(Arc::new(provider()), Arc::new(WallClock))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    // No resumption: tickets would cost every handshake two more records
    // and a ticket key to guard, for clients (curl, load generators) that
    // rarely resume.
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// The certificate for clients that ask for one of `names`, or for none.
#[derive(Debug)]
struct ByName {
    names: Vec<String>,
    certified: Arc<CertifiedKey>,
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match hello.server_name() {
            Some(name) if !self.names.iter().any(|n| n.eq_ignore_ascii_case(name)) => None,
            _ => Some(self.certified.clone()),
        }
    }
}
