//! Harnesses for http (see the crate docs).

use crate::Target;

pub const TARGETS: &[Target] = &[];
