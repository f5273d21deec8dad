//! What a TLS client may hold, with safe defaults.

use core::time::Duration;

/// Limits of an [`Acceptor`](crate::Acceptor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From accept to a finished handshake (default 10 s): a client that
    /// stalls mid-handshake, or drips its ClientHello, is dropped then.
    pub handshake_deadline: Duration,
    /// TLS connections open at once (default 64), each holding about 40 KiB
    /// of record buffers; the excess is closed before any TLS work.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { handshake_deadline: Duration::from_secs(10), max_connections: 64 }
    }
}
