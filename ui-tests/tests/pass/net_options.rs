//! The program shape with a static address (ignored when hosted).
#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_net::{Net, net};

#[unikernel(net(ip = "10.0.2.15/24", gateway = "10.0.2.2", dns = "10.0.2.3"))]
async fn main(net: Net) -> Result<(), Error> {
    let listener = net.tcp_listen(48123).await?;
    // Nobody connects: accept must still be waiting.
    let accepted = timeout(Duration::from_millis(50), listener.accept()).await;
    assert!(accepted.is_err());
    Ok(())
}
