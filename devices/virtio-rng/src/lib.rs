//! The `virtio_rng` component: a virtio entropy device (virtio device id 4)
//! as the generator behind `entropy(source = "device")`, so `Entropy` and
//! `getrandom` work on CPUs without RDRAND (QEMU's `-cpu qemu64`).
//!
//! ```
//! use unikernel::prelude::*;
//! use unikernel_entropy::{Entropy, entropy};
//!
//! #[unikernel(unikernel_virtio_rng::virtio_rng, entropy(source = "device"))]
//! fn main(rng: Entropy) -> Result<(), Error> {
//!     let mut key = [0; 32];
//!     rng.fill(&mut key) // from the device (hosted: the OS's generator)
//! }
//! ```
//!
//! Its `init` finds the device (`unikernel-virtio`) and registers the
//! driver with [`unikernel_entropy::set_device`]; it starts after `entropy`
//! and fails when the image has no such device or `entropy` reads another
//! source. Hosted, there is no device: `entropy` reads the operating
//! system's generator whatever its source, and this component does nothing.
#![cfg_attr(target_os = "none", no_std)]

extern crate alloc;

#[cfg(target_os = "none")]
mod machine;

use unikernel_core::Error;
use unikernel_core::component::Component;
use unikernel_core::vmm::{Record, virtio};

/// The component; named in `#[unikernel(...)]` with [`virtio_rng!`].
#[derive(Debug)]
pub struct VirtioRng;

/// Options of `virtio_rng(...)`: none yet.
#[derive(Debug, Default)]
pub struct Options {}

impl Component for VirtioRng {
    const NAME: &'static str = "virtio_rng";
    /// It registers with the entropy component, which must have its source.
    const AFTER: &'static [&'static str] = &["entropy"];
    /// An entropy device for the VMM to attach.
    const NEEDS: &'static [Record] = &[Record::virtio(virtio::ENTROPY, Self::NAME).required()];
    type Options = Options;

    fn init(_options: &Options) -> Result<(), Error> {
        #[cfg(target_os = "none")]
        return unikernel_entropy::set_device(Self::NAME, machine::start()?);
        #[cfg(not(target_os = "none"))]
        {
            log::debug!("virtio-rng: hosted, entropy reads the operating system's generator");
            Ok(())
        }
    }
}

#[doc(hidden)]
pub use unikernel_core as __unikernel;

/// Names the component in `#[unikernel(...)]`: `virtio_rng` (no options
/// yet), beside `entropy(source = "device")`.
#[doc(hidden)]
#[macro_export]
macro_rules! __virtio_rng {
    ($($options:tt)*) => {
        $crate::__unikernel::component::options!($crate::VirtioRng, $crate::Options; $($options)*)
    };
}
pub use __virtio_rng as virtio_rng;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
