#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;

#[unikernel(forward = "tcp:8080")]
fn main() {}

mod twice {
    use super::*;
    #[unikernel(forward = "8080:80, tcp:8080:81")]
    fn main() {}
}
