#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_net::{Net, net};

#[unikernel(net(ip = "10.0.2.300/24"))]
async fn main(_net: Net) {}

mod no_prefix {
    use super::*;
    #[unikernel(net(ip = "10.0.2.15", gateway = "10.0.2.2"))]
    async fn main(_net: Net) {}
}

mod bad_gateway {
    use super::*;
    #[unikernel(net(ip = "10.0.2.15/24", gateway = "router"))]
    async fn main(_net: Net) {}
}

mod dhcp_and_static {
    use super::*;
    #[unikernel(net(dhcp, ip = "10.0.2.15/24"))]
    async fn main(_net: Net) {}
}

mod gateway_without_ip {
    use super::*;
    #[unikernel(net(gateway = "10.0.2.2"))]
    async fn main(_net: Net) {}
}
