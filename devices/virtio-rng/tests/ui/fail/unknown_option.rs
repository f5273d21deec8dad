#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;
use unikernel_entropy::{Entropy, entropy};
use unikernel_virtio_rng::virtio_rng;

#[unikernel(virtio_rng(rate = 1024), entropy(source = "device"))]
fn main(_rng: Entropy) {}
