#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;

#[unikernel(unikernel_virtio_rng::virtio_rng(), unikernel_entropy::entropy(source = "device"))]
fn main() {
    assert!(unikernel::component::linked("virtio_rng"));
}
