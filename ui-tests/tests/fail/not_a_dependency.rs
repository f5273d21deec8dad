#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;

// A component from a crate this one does not depend on.
#[unikernel(my_sensors::thermo(period_ms = 500))]
fn main() {}
