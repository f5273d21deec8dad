//! Paths to crates as the application's Cargo.toml names them.

use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The facade crate, `::unikernel` unless renamed. It is published as
/// `unikernel-rt` with the library name `unikernel`: a dependency keyed
/// `unikernel-rt` is still `unikernel` in code (proc-macro-crate cannot know
/// library names), one keyed otherwise (`unikernel = { package = ... }`) is
/// its key.
pub fn facade() -> TokenStream {
    match crate_name("unikernel-rt") {
        Ok(FoundCrate::Name(name)) if name != "unikernel_rt" => {
            let ident = format_ident!("{name}");
            quote!(::#ident)
        }
        // `Itself` only happens in the facade's own examples and tests,
        // which are separate crates that see it as `unikernel`.
        Ok(_) | Err(_) => quote!(::unikernel),
    }
}
