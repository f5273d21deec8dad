//! What a connection costs and how many the stack takes at once.

use smoltcp::socket::tcp;
use smoltcp::time::Duration;

/// Per-direction buffer of a connection: a 64 KiB window would need 128 KiB
/// per connection; 16 KiB keeps a thousand-connection server in a few MiB.
pub const BUFFER: usize = 16 * 1024;

/// Heap taken by one TCP socket: its two buffers and the socket itself.
pub const SOCKET_COST: usize = 2 * BUFFER + size_of::<tcp::Socket<'static>>();

/// The stack's limits; [`Limits::for_heap`] derives them from the memory
/// the guest has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// TCP sockets at once: listening slots, connections, and connections
    /// still closing in the background. At the limit a new connection is
    /// refused (RST) and the oldest closing one is reset to make room.
    pub max_sockets: usize,
    /// How long a connection may stay half-open (SYN received, handshake
    /// not finished) before its backlog slot listens again.
    pub half_open: Duration,
    /// How long a dropped connection may take to close before it is reset.
    pub linger: Duration,
    /// Frames received per poll before the driver yields to other tasks.
    pub frames_per_poll: usize,
}

impl Limits {
    /// Sockets may take half of a heap of `heap_size` bytes; the rest is
    /// left to the application (its own per-connection state) and the
    /// stack's tables.
    pub fn for_heap(heap_size: usize) -> Self {
        Self {
            max_sockets: heap_size / 2 / SOCKET_COST,
            half_open: Duration::from_secs(5),
            linger: Duration::from_secs(10),
            frames_per_poll: 32,
        }
    }
}
