//! The application's logic, in a library so that tests/app.rs can test it.
#![cfg_attr(target_os = "none", no_std)]

extern crate alloc;

use alloc::format;
use alloc::string::String;

/// What `main` prints.
pub fn greeting(name: &str) -> String {
    format!("Hello from {name}!")
}
