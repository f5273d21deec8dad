//! The server's metrics, and [`metrics`]: every metric of the image as a
//! response in the Prometheus text format, for a `/metrics` route.

use crate::Response;
use unikernel_core::counter;

counter!(pub static CONNECTIONS = "unikernel_http_connections_total", "Connections the HTTP server loop took.");
counter!(pub static REQUESTS = "unikernel_http_requests_total", "Requests handed to HTTP handlers.");
counter!(
    pub static REFUSED = "unikernel_http_refused_total",
    "Requests refused by the HTTP server's limits (4xx/503 before the handler)."
);

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of the image (`unikernel_core::metrics::render`) as a
/// `200 OK` response: one route makes a `/metrics` endpoint,
/// `.get("/metrics", async |_| unikernel_http::metrics())`.
pub fn metrics() -> Response {
    let mut text = alloc::string::String::new();
    // Writing into a String cannot fail.
    let _ = unikernel_core::metrics::render(&mut text);
    Response::new("200 OK", CONTENT_TYPE, text)
}
