//! Harnesses for net (see the crate docs).

use crate::Target;

pub const TARGETS: &[Target] = &[];
