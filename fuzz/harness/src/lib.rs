//! Fuzz harnesses: each function takes arbitrary bytes, drives one input
//! path of the framework with them on the host, and panics when a promised
//! property breaks. `fuzz/fuzz_targets/NAME.rs` hands them to libFuzzer
//! (`cargo xtask fuzz NAME`, nightly); `tests/corpora.rs` replays the
//! committed corpora in `fuzz/corpus/NAME/` on stable with the tests.

pub mod dns;
pub mod http;
pub mod net;
pub mod store;
pub mod virtio;
pub mod vmm;

/// A harness: the name of its fuzz target and corpus, and the function.
pub type Target = (&'static str, fn(&[u8]));

/// Every harness.
pub fn targets() -> Vec<Target> {
    [store::TARGETS, http::TARGETS, dns::TARGETS, net::TARGETS, virtio::TARGETS, vmm::TARGETS].concat()
}
