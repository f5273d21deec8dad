//! The `entropy` component: `#[unikernel] fn main(rng: Entropy)`.
//!
//! On bare metal it reads the CPU's generator (RDRAND, or RDSEED with
//! `entropy(source = "rdseed")`) and refuses to start on a CPU without it;
//! hosted, it reads the operating system's (`getrandom`). On bare metal it
//! is also `getrandom`'s custom backend, so crates that need randomness
//! (hash maps, TCP initial sequence numbers) work in an image that names
//! `entropy`.
#![cfg_attr(target_os = "none", no_std)]

use spin::Once;
use unikernel_core::Error;
use unikernel_core::component::{Component, Handle};

#[cfg(target_os = "none")]
mod cpu;

/// Which CPU instruction supplies the bytes on bare metal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A DRBG reseeded by the hardware source: fast, the usual choice.
    RdRand,
    /// The hardware source itself: slower, for seeding other generators.
    RdSeed,
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
        return cpu::fill(self.source, buf);
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

    /// Fails when the CPU lacks the instruction.
    fn init(options: &Options) -> Result<(), Error> {
        #[cfg(target_os = "none")]
        cpu::check(options.source)?;
        log::debug!("entropy: source {:?}", options.source);
        SOURCE.call_once(|| options.source);
        Ok(())
    }
}

impl Handle for Entropy {
    type Component = Self;

    fn take() -> Result<Self, Error> {
        let source = *SOURCE.get().ok_or_else(|| Error::msg("the entropy component has not started"))?;
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

/// Names the component in `#[unikernel(...)]`, with its options: `entropy`
/// or `entropy(source = "rdseed")`. A parameter `rng: Entropy` of `main`
/// alone starts it with RDRAND.
#[doc(hidden)]
#[macro_export]
macro_rules! __entropy {
    ($($options:tt)*) => { $crate::__entropy_options!{ $crate ; $($options)* } };
}
pub use __entropy as entropy;
