#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_net::Net;
use unikernel_storage::Block;

#[unikernel(net, block(cache = "none"))]
async fn main(net: Net, disk: Block) {}
