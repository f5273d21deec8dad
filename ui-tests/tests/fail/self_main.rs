#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;

struct App;

impl App {
    #[unikernel]
    fn main(self) {}
}

fn main() {}
