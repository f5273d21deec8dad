//! [`Acceptor`]: server-side handshakes under the [`Limits`].

use crate::error::Error;
use crate::limits::Limits;
use crate::metrics;
use crate::stream::TlsStream;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};
use embedded_io_async::{Read, Write};
use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;

/// Turns accepted streams into TLS streams: one configuration and one
/// connection cap shared by its clones (clone it for each connection).
#[derive(Clone, Debug)]
pub struct Acceptor {
    config: Arc<ServerConfig>,
    limits: Limits,
    open: Arc<AtomicUsize>,
}

impl Acceptor {
    /// An acceptor for `config` (from [`server_config`](crate::server_config)) within `limits`.
    pub fn new(config: Arc<ServerConfig>, limits: Limits) -> Self {
        Self { config, limits, open: Arc::default() }
    }

    /// TLS connections open now (handshaking or established).
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Runs the server handshake on `io`. Fails, dropping `io` (which
    /// closes it), when `max_connections` are open, when the client does
    /// not finish within the handshake deadline, or when rustls refuses it
    /// (after sending its alert).
    pub async fn accept<S: Read + Write>(&self, io: S) -> Result<TlsStream<S>, Error<S::Error>> {
        let result = self.handshake(io).await;
        match &result {
            Ok(_) => metrics::HANDSHAKES.inc(),
            Err(Error::Busy) => metrics::BUSY.inc(),
            Err(_) => metrics::FAILED.inc(),
        }
        result
    }

    async fn handshake<S: Read + Write>(&self, io: S) -> Result<TlsStream<S>, Error<S::Error>> {
        let permit = Permit::take(&self.open, self.limits.max_connections).ok_or(Error::Busy)?;
        let conn = UnbufferedServerConnection::new(self.config.clone()).map_err(Error::Tls)?;
        let mut stream = TlsStream::new(io, conn, permit);
        let deadline = self.limits.handshake_deadline;
        unikernel_core::timer::timeout(deadline, stream.handshake()).await.map_err(|_| Error::HandshakeTimeout)??;
        Ok(stream)
    }
}

/// A place among `max_connections`, given back on drop.
#[derive(Debug)]
pub(crate) struct Permit(Arc<AtomicUsize>);

impl Permit {
    pub(crate) fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        open.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Self(open.clone()))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
