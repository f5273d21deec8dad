//! Why a TLS connection ended.

use core::fmt;

/// A TLS connection's error over a stream whose errors are `E`.
#[derive(Clone, Debug, PartialEq)]
pub enum Error<E> {
    /// The underlying stream failed.
    Io(E),
    /// rustls refused the peer (it was sent an alert where one applies).
    Tls(rustls::Error),
    /// The handshake did not finish before the deadline.
    HandshakeTimeout,
    /// `max_connections` were open: closed before any TLS work.
    Busy,
    /// The peer closed the stream mid-handshake or mid-record.
    Closed,
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => e.fmt(f),
            Self::Tls(e) => write!(f, "tls: {e}"),
            Self::HandshakeTimeout => f.write_str("tls: the handshake did not finish in time"),
            Self::Busy => f.write_str("tls: too many connections"),
            Self::Closed => f.write_str("tls: the peer closed the connection"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for Error<E> {}

impl<E: embedded_io_async::Error> embedded_io_async::Error for Error<E> {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        use embedded_io_async::ErrorKind as K;
        match self {
            Self::Io(e) => e.kind(),
            Self::Tls(_) => K::InvalidData,
            Self::HandshakeTimeout => K::TimedOut,
            Self::Busy => K::OutOfMemory,
            Self::Closed => K::ConnectionAborted,
        }
    }
}
