//! The error of socket operations.

use core::fmt;

/// Why a socket operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The peer reset the connection, or it timed out.
    ConnectionReset,
    /// The peer refused the connection.
    ConnectionRefused,
    /// Writing to a connection that is closed for writing.
    BrokenPipe,
    /// No address or no route to the destination (DHCP not done yet?).
    Unreachable,
    /// The port is taken.
    AddrInUse,
    /// An argument was not valid: port 0, a name too long, ...
    InvalidInput,
    /// A name did not resolve.
    NotFound,
    /// Anything else, with what happened.
    Other(&'static str),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ConnectionReset => "connection reset",
            Self::ConnectionRefused => "connection refused",
            Self::BrokenPipe => "connection closed for writing",
            Self::Unreachable => "destination unreachable",
            Self::AddrInUse => "address in use",
            Self::InvalidInput => "invalid argument",
            Self::NotFound => "name not found",
            Self::Other(what) => what,
        })
    }
}

impl core::error::Error for NetError {}

impl embedded_io_async::Error for NetError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        use embedded_io_async::ErrorKind as K;
        match self {
            Self::ConnectionReset => K::ConnectionReset,
            Self::ConnectionRefused => K::ConnectionRefused,
            Self::BrokenPipe => K::BrokenPipe,
            Self::Unreachable => K::AddrNotAvailable,
            Self::AddrInUse => K::AddrInUse,
            Self::InvalidInput => K::InvalidInput,
            Self::NotFound => K::NotFound,
            Self::Other(_) => K::Other,
        }
    }
}
