#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_net::Net;
use unikernel_storage::{Block, block};

#[unikernel(block(cache = "none"))]
async fn main(_net: Net, _disk: Block) {}
