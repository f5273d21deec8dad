//! The components the macro knows. Adding one is adding an entry here: the
//! crate that implements it provides `__component::init(&Options)`, a handle
//! type implementing `Handle`, and (optionally) an `Options` struct whose
//! tokens `options` builds from the attribute.

use darling::ast::NestedMeta;
use proc_macro2::TokenStream;

pub struct Spec {
    /// The name in `#[unikernel(...)]`.
    pub name: &'static str,
    /// The package that implements it (the user depends on it).
    pub package: &'static str,
    /// The handle type at the package root, passed to `main`.
    pub handle: Option<&'static str>,
    /// Components started before this one; named ones pull these in.
    pub after: &'static [&'static str],
    /// Parses `name(...)` options into an `Options` expression, given the
    /// path of the component crate.
    pub options: fn(&[NestedMeta], &TokenStream) -> darling::Result<TokenStream>,
}

pub const KNOWN: &[Spec] = &[Spec {
    name: "entropy",
    package: "unikernel-entropy",
    handle: Some("Entropy"),
    after: &[],
    options: entropy::options,
}];

pub fn find(name: &str) -> Option<&'static Spec> {
    KNOWN.iter().find(|s| s.name == name)
}

mod entropy {
    use darling::{FromMeta, ast::NestedMeta};
    use proc_macro2::TokenStream;
    use quote::quote;

    #[derive(FromMeta, Default)]
    struct Options {
        /// `rdrand` (default) or `rdseed`.
        source: Option<syn::LitStr>,
    }

    pub fn options(items: &[NestedMeta], krate: &TokenStream) -> darling::Result<TokenStream> {
        let o = Options::from_list(items)?;
        let source = match o.source.as_ref().map(|s| (s.value(), s)) {
            None => quote!(RdRand),
            Some((v, _)) if v == "rdrand" => quote!(RdRand),
            Some((v, _)) if v == "rdseed" => quote!(RdSeed),
            Some((v, lit)) => {
                return Err(darling::Error::custom(format!(
                    "unknown entropy source `{v}`: expected \"rdrand\" or \"rdseed\""
                ))
                .with_span(lit));
            }
        };
        Ok(quote!(#krate::Options { source: #krate::Source::#source }))
    }
}
