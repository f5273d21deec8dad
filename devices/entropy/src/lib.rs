//! The `entropy` component: `#[unikernel] fn main(rng: Entropy)`.
//!
//! On bare metal it reads the CPU's generator (RDRAND, or RDSEED with
//! `entropy(source = "rdseed")`) and refuses to start on a CPU without it,
//! or with `entropy(source = "device")` a device whose driver component
//! registers with [`set_device`] (`unikernel-virtio-rng`); hosted, it reads
//! the operating system's (`getrandom`). On bare metal it
//! is also `getrandom`'s custom backend, so crates that need randomness
//! (hash maps, TCP initial sequence numbers) work in an image that names
//! `entropy`.
#![cfg_attr(target_os = "none", no_std)]

extern crate alloc;

use alloc::format;
use spin::Once;
use unikernel_core::Error;
use unikernel_core::component::{Component, Handle};

#[cfg(target_os = "none")]
mod cpu;

/// What supplies the bytes on bare metal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The CPU's DRBG reseeded by the hardware source: fast, the usual choice.
    RdRand,
    /// The CPU's hardware source itself: slower, for seeding other generators.
    RdSeed,
    /// A device, whose driver component registers with [`set_device`]: for
    /// CPUs without RDRAND.
    Device,
}

impl Source {
    /// The CPU instruction behind the source, if it is one.
    #[cfg(target_os = "none")]
    fn cpu(self) -> Option<unikernel_core::bus::RandomKind> {
        use unikernel_core::bus::RandomKind;
        match self {
            Self::RdRand => Some(RandomKind::Drbg),
            Self::RdSeed => Some(RandomKind::Seed),
            Self::Device => None,
        }
    }
}

/// Fills a buffer from a device: what a driver registers with [`set_device`].
pub type DeviceFill = fn(&mut [u8]) -> Result<(), Error>;

/// The driver behind [`Source::Device`], with its name.
static DEVICE: Once<(&'static str, DeviceFill)> = Once::new();

/// Makes `fill` the generator behind `entropy(source = "device")`: a driver
/// component calls it from its `init`, with `"entropy"` in its `AFTER`.
/// Fails when the entropy component has not started, reads another source,
/// or already has a device.
pub fn set_device(driver: &'static str, fill: DeviceFill) -> Result<(), Error> {
    match SOURCE.get() {
        None => return Err(Error::msg("the entropy component has not started: name `entropy` in the driver's AFTER")),
        Some(Source::Device) => {}
        Some(other) => {
            return Err(Error::msg(format!(
                "{driver} supplies entropy, but `entropy` reads {other:?}: name `entropy(source = \"device\")`"
            )));
        }
    }
    let mut set = false;
    let (first, _) = DEVICE.call_once(|| {
        set = true;
        (driver, fill)
    });
    if set { Ok(()) } else { Err(Error::msg(format!("{first} already supplies entropy; {driver} cannot too"))) }
}

/// The registered device's fill, or why there is none.
#[cfg(target_os = "none")]
fn device() -> Result<DeviceFill, Error> {
    DEVICE.get().map(|&(_, fill)| fill).ok_or_else(|| {
        Error::msg("`entropy(source = \"device\")` has no device: name its driver's component, e.g. `unikernel_virtio_rng::virtio_rng`")
    })
}

/// Options of `entropy(...)` in `#[unikernel]`.
#[derive(Debug)]
pub struct Options {
    /// Which instruction supplies the bytes.
    pub source: Source,
}

impl Default for Options {
    /// RDRAND: fast, and what the other sources are seeded from.
    fn default() -> Self {
        Self { source: Source::RdRand }
    }
}

static SOURCE: Once<Source> = Once::new();

/// The handle `main` receives: proof that the image has an entropy source.
#[derive(Clone, Copy, Debug)]
pub struct Entropy {
    source: Source,
}

impl Entropy {
    /// Fills `buf` with random bytes.
    pub fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        #[cfg(target_os = "none")]
        return match self.source.cpu() {
            Some(kind) => cpu::fill(kind, buf),
            None => device()?(buf),
        };
        #[cfg(not(target_os = "none"))]
        {
            let _ = self.source;
            getrandom::fill(buf).map_err(|e| Error::msg(format!("getrandom: {e}")))
        }
    }

    /// A random `u64`.
    pub fn u64(&self) -> Result<u64, Error> {
        let mut bytes = [0; 8];
        self.fill(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// The source this handle reads.
    pub fn source(&self) -> Source {
        self.source
    }
}

impl Component for Entropy {
    const NAME: &'static str = "entropy";
    type Options = Options;

    /// Fails when the CPU lacks the instruction. A device source is
    /// checked by [`Handle::take`], once every driver component started.
    fn init(options: &Options) -> Result<(), Error> {
        #[cfg(target_os = "none")]
        if let Some(kind) = options.source.cpu() {
            cpu::check(kind)?;
        }
        log::debug!("entropy: source {:?}", options.source);
        SOURCE.call_once(|| options.source);
        Ok(())
    }
}

impl Handle for Entropy {
    type Component = Self;

    fn take() -> Result<Self, Error> {
        let source = *SOURCE.get().ok_or_else(|| Error::msg("the entropy component has not started"))?;
        #[cfg(target_os = "none")]
        if source == Source::Device {
            device()?;
        }
        Ok(Self { source })
    }
}

/// getrandom 0.3's custom backend (`--cfg getrandom_backend="custom"`).
///
/// # Safety
/// getrandom passes a valid, writable `dest` of `len` bytes, which may be
/// uninitialised.
#[cfg(target_os = "none")]
#[unsafe(no_mangle)]
unsafe extern "Rust" fn __getrandom_v03_custom(dest: *mut u8, len: usize) -> Result<(), getrandom::Error> {
    // SAFETY: `dest` is valid for writes of `len` bytes (getrandom's
    // contract). A `&mut [u8]` must point to initialised bytes, which
    // `dest`'s need not be: zeroing them through the raw pointer first
    // makes the slice valid.
    let buf = unsafe {
        dest.write_bytes(0, len);
        core::slice::from_raw_parts_mut(dest, len)
    };
    let entropy = <Entropy as Handle>::take().map_err(|_| getrandom::Error::UNSUPPORTED)?;
    entropy.fill(buf).map_err(|_| getrandom::Error::UNEXPECTED)
}

#[doc(hidden)]
pub use unikernel_core as __unikernel;
#[doc(hidden)]
pub use unikernel_entropy_macros::options as __entropy_options;

/// Names the component in `#[unikernel(...)]`, with its options: `entropy`,
/// `entropy(source = "rdseed")` or `entropy(source = "device")`. A parameter `rng: Entropy` of `main`
/// alone starts it with RDRAND.
#[doc(hidden)]
#[macro_export]
macro_rules! __entropy {
    ($($options:tt)*) => { $crate::__entropy_options!{ $crate ; $($options)* } };
}
pub use __entropy as entropy;

#[cfg(test)]
mod tests {
    use super::*;

    fn zeros(buf: &mut [u8]) -> Result<(), Error> {
        buf.fill(0);
        Ok(())
    }

    #[test]
    fn a_device_registers_once_and_only_with_the_device_source_started() {
        let refused = set_device("early", zeros).unwrap_err().to_string();
        assert!(refused.contains("has not started"), "{refused}");
        Entropy::init(&Options { source: Source::Device }).unwrap();
        set_device("first", zeros).unwrap();
        let second = set_device("second", zeros).unwrap_err().to_string();
        assert_eq!(second, "first already supplies entropy; second cannot too");
        assert_eq!(Entropy::take().unwrap().source(), Source::Device);
    }
}
