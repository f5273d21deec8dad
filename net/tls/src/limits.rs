//! What a TLS client may hold, with safe defaults.

use core::time::Duration;

/// Limits of an [`Acceptor`](crate::Acceptor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From accept to a finished handshake (default 10 s): a client that
    /// stalls mid-handshake, or drips its ClientHello, is dropped then.
    pub handshake_deadline: Duration,
    /// TLS connections open at once, each holding its record buffers and
    /// rustls's state (about 40–55 KiB); the excess is closed before any
    /// TLS work. By default as many as a quarter of the memory free now
    /// holds, at most 64: the cap, not the allocator, says no.
    pub max_connections: usize,
}

/// What one connection is reckoned to hold, rounded up from 40–55 KiB
/// measured (two ~18 KiB record buffers, the handshake, the keys).
const CONNECTION_COST: usize = 64 * 1024;
/// The default cap where memory is plentiful (or unknown: hosted).
const MAX_CONNECTIONS: usize = 64;

impl Limits {
    /// The default cap for `free` bytes of memory: a quarter of it, at
    /// [`CONNECTION_COST`] each, between 1 and 64.
    pub fn connections_for(free: Option<usize>) -> usize {
        free.map_or(MAX_CONNECTIONS, |free| (free / 4 / CONNECTION_COST).clamp(1, MAX_CONNECTIONS))
    }
}

impl Default for Limits {
    fn default() -> Self {
        let free = unikernel_core::platform::try_get().and_then(|p| p.free_memory());
        Self { handshake_deadline: Duration::from_secs(10), max_connections: Self::connections_for(free) }
    }
}

#[cfg(test)]
mod tests {
    use super::{CONNECTION_COST, Limits};

    #[test]
    fn the_default_cap_fits_a_quarter_of_free_memory() {
        assert_eq!(Limits::connections_for(None), 64, "hosted: no figure, the fixed cap");
        assert_eq!(Limits::connections_for(Some(64 << 20)), 64, "plenty: the fixed cap");
        // A 2.5 MiB guest has about 1.5 MiB free once serving.
        let small = Limits::connections_for(Some(1536 << 10));
        assert_eq!(small, 6);
        assert!(small * CONNECTION_COST <= (1536 << 10) / 4);
        assert_eq!(Limits::connections_for(Some(1000)), 1, "never zero: one client is always served");
    }
}
