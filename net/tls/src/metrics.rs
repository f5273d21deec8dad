//! The TLS server's metrics (in `unikernel_http::metrics()`'s output too).

use unikernel_core::counter;

counter!(pub static HANDSHAKES = "unikernel_tls_handshakes_total", "TLS handshakes completed.");
counter!(
    pub static FAILED = "unikernel_tls_handshake_failures_total",
    "TLS handshakes that failed: bad or unsupported client, timeout, closed."
);
counter!(pub static BUSY = "unikernel_tls_busy_total", "TLS connections closed at once: max_connections open.");
