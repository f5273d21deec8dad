//! The static page of the web server examples (`http`, `https`).

/// `GET /`.
pub const INDEX: &str = "<!doctype html>\n<title>unikernel</title>\n<h1>Hello from a unikernel</h1>\n";
