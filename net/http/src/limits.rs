//! What a client may cost: sizes, deadlines, and the memory budget.

use core::time::Duration;

/// The server's limits. [`Limits::default`] is safe for a server on the
/// open Internet; change fields with struct update syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line and headers); larger: `400`.
    pub max_head: usize,
    /// Largest request body; larger: `413`.
    pub max_body: usize,
    /// How long a connection may wait before a request's first byte (from
    /// the connection's start or the end of the previous response); then it
    /// is closed quietly.
    pub idle_timeout: Duration,
    /// How long a whole request head may take from its first byte (from
    /// the end of the previous response when it was pipelined); then `408`.
    pub head_timeout: Duration,
    /// How long a whole request body may take, plus its length at
    /// `min_rate`; then `408`.
    pub body_timeout: Duration,
    /// How long writing a whole response may take, plus its length at
    /// `min_rate`; a client that stops reading is dropped then.
    pub write_timeout: Duration,
    /// Bytes per second a body is granted on top of its timeout, so a long
    /// body on a slow link is not cut off.
    pub min_rate: u64,
    /// Bytes of request and response bodies that all the server's
    /// connections may hold at once (see [`crate::Budget`]).
    pub memory_budget: usize,
    /// Connections a [`crate::Server`] serves at once; the next one gets
    /// `503` with `Retry-After` and is closed. Each connection may hold a
    /// `max_head` buffer outside the budget, so the default keeps those
    /// within the budget too.
    pub max_connections: usize,
}

/// Fallback budget where the platform does not say how much memory is free.
const DEFAULT_BUDGET: usize = 16 << 20;

impl Default for Limits {
    /// 8 KiB heads, 64 KiB bodies, 10 s for each step plus 16 KiB/s for
    /// bodies, a quarter of the memory free now as the budget, and as many
    /// connections as the budget holds heads (at most 1024).
    fn default() -> Self {
        let free = unikernel_core::platform::try_get().and_then(|p| p.free_memory());
        let memory_budget = free.map_or(DEFAULT_BUDGET, |free| free / 4);
        let max_head = 8 * 1024;
        Self {
            max_head,
            max_body: 64 * 1024,
            idle_timeout: Duration::from_secs(10),
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            min_rate: 16 * 1024,
            memory_budget,
            max_connections: (memory_budget / max_head).clamp(1, 1024),
        }
    }
}

impl Limits {
    /// The time `len` bytes are granted at `min_rate`.
    pub(crate) fn transfer_time(&self, len: usize) -> Duration {
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        Duration::from_millis(len.saturating_mul(1000) / self.min_rate.max(1))
    }
}
