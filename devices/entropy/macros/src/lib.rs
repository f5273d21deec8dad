//! `entropy(...)`'s options, checked at compile time with errors on the
//! offending token: `entropy`, `entropy(source = "rdseed")` or `entropy(source = "device")`. Called
//! through `unikernel_entropy::entropy!`, which passes its `$crate` first.
#![forbid(unsafe_code)]

use darling::{FromMeta, ast::NestedMeta};
use proc_macro2::TokenStream;
use quote::quote;

/// `$crate ; OPTIONS` to the `entropy` component's entry.
#[proc_macro]
pub fn options(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    unikernel_options::expand(input.into(), "Entropy", grammar).into()
}

#[derive(FromMeta, Default)]
struct Options {
    /// `rdrand` (default), `rdseed` or `device`.
    source: Option<syn::LitStr>,
}

fn grammar(items: &[NestedMeta], krate: &TokenStream) -> darling::Result<TokenStream> {
    let o = Options::from_list(items)?;
    let source = match o.source.as_ref().map(|s| (s.value(), s)) {
        None => quote!(RdRand),
        Some((v, _)) if v == "rdrand" => quote!(RdRand),
        Some((v, _)) if v == "rdseed" => quote!(RdSeed),
        Some((v, _)) if v == "device" => quote!(Device),
        Some((v, lit)) => {
            return Err(darling::Error::custom(format!(
                "unknown entropy source `{v}`: expected \"rdrand\", \"rdseed\" or \"device\""
            ))
            .with_span(lit));
        }
    };
    Ok(quote!(#krate::Options { source: #krate::Source::#source }))
}
