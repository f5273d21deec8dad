//! TLS 1.3 server streams for unikernels: an [`Acceptor`] turns an
//! accepted connection (any `embedded_io_async::Read + Write`, such as
//! `unikernel_net::TcpStream`) into a [`TlsStream`], itself `Read + Write`,
//! so a protocol loop written for plain streams (`unikernel_http::serve`)
//! runs over TLS unchanged.
//!
//! Built on rustls's no_std unbuffered API with RustCrypto's pure-Rust
//! primitives (`rustls-rustcrypto`): no C toolchain, no `std`. TLS 1.3
//! only (older clients get a `protocol_version` alert), ECDSA certificates,
//! X25519 or P-256 key exchange, no session resumption. Randomness comes
//! from the `entropy` component ([`server_config`] takes its handle), time
//! from the wall clock.
//!
//! Hostile clients are the normal case: a handshake deadline and a cap on
//! open connections ([`Limits`]), fixed record buffers (rustls refuses
//! records beyond the TLS maximum with `record_overflow`), and every
//! refusal ends that connection alone.
//!
//! ```no_run
//! use unikernel_tls::{Acceptor, Limits, server_config};
//! use unikernel_tls::pki_types::{CertificateDer, PrivateKeyDer};
//!
//! async fn serve_one<S: embedded_io_async::Read + embedded_io_async::Write>(
//!     acceptor: &Acceptor,
//!     conn: S,
//! ) -> Result<(), unikernel_tls::Error<S::Error>> {
//!     let mut tls = acceptor.accept(conn).await?;
//!     embedded_io_async::Write::write_all(&mut tls, b"hello over TLS\n").await
//! }
//!
//! fn acceptor(rng: unikernel_entropy::Entropy, cert: &'static [u8], key: &'static [u8]) -> Acceptor {
//!     let key = PrivateKeyDer::try_from(key).expect("a PKCS#8 or SEC1 key");
//!     let config = server_config(rng, vec![CertificateDer::from(cert)], key, &["localhost"]).expect("config");
//!     Acceptor::new(config, Limits::default())
//! }
//! # fn main() {}
//! ```
#![cfg_attr(not(test), no_std)]
#![cfg_attr(all(not(test), not(target_os = "none")), forbid(unsafe_code))]

extern crate alloc;

mod acceptor;
mod config;
mod error;
mod limits;
pub mod metrics;
mod provider;
mod random;
#[cfg(feature = "self-signed")]
pub mod self_signed;
mod stream;
mod time;

pub use acceptor::Acceptor;
pub use config::server_config;
pub use error::Error;
pub use limits::Limits;
pub use rustls::pki_types;
pub use stream::TlsStream;
#[cfg(test)]
mod tests;
