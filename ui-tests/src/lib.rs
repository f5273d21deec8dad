//! Only `tests/ui.rs` matters here; the dependencies above are what the
//! trybuild cases compile against.
#![forbid(unsafe_code)]
