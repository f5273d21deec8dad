//! The plumbing of a component's option macro, for component crates whose
//! options have a grammar (an address in a string, a choice of words), so
//! that their proc-macro crate is only that grammar.
//!
//! The component crate forwards its name's macro to its proc macro with
//! `$crate` first (`macro_rules! __net { ($($options:tt)*) => {
//! $crate::__net_options!{ $crate ; $($options)* } } }`, exported as `net`),
//! and re-exports the runtime as `__unikernel`; the proc macro is
//! `unikernel_options::expand(input, "Net", grammar)`. `unikernel-net` and
//! `unikernel-net-macros` are the complete example.
#![forbid(unsafe_code)]
// Code for proc macros, which run on the host: nothing on bare metal.
#![cfg_attr(target_os = "none", no_std)]
#![cfg(not(target_os = "none"))]

use darling::ast::NestedMeta;
use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::quote;

/// A grammar: the user's options, parsed, to an expression of the
/// component's `Options` type, given the path of the component crate.
pub type Grammar = fn(&[NestedMeta], &TokenStream) -> darling::Result<TokenStream>;

/// Expands `$crate ; OPTIONS` to the component entry of `component` (a
/// type at the component crate's root) with the options `grammar` builds.
/// Errors are reported on the user's tokens, followed by the entry with
/// default options, so no knock-on error follows.
pub fn expand(input: TokenStream, component: &str, grammar: Grammar) -> TokenStream {
    let mut tokens = input.into_iter();
    let krate: TokenStream =
        tokens.by_ref().take_while(|t| !matches!(t, TokenTree::Punct(p) if p.as_char() == ';')).collect();
    let options: TokenStream = tokens.collect();
    let component = Ident::new(component, Span::call_site());
    let ty = quote!(#krate::#component);
    let built =
        NestedMeta::parse_meta_list(options).map_err(darling::Error::from).and_then(|items| grammar(&items, &krate));
    match built {
        Ok(options) => quote!(#krate::__unikernel::component::entry!(#ty, #options)),
        Err(e) => {
            let errors = e.write_errors();
            quote!({
                #errors
                #krate::__unikernel::component::entry!(#ty, ::core::default::Default::default())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use darling::FromMeta;

    #[derive(FromMeta)]
    struct Options {
        period_ms: u32,
    }

    fn grammar(items: &[NestedMeta], krate: &TokenStream) -> darling::Result<TokenStream> {
        let period = Options::from_list(items)?.period_ms;
        Ok(quote!(#krate::Options { period_ms: #period }))
    }

    fn expanded(input: &str) -> String {
        expand(input.parse().unwrap(), "Thermo", grammar).to_string()
    }

    #[test]
    fn options_become_the_entry_of_the_component_at_the_crate_root() {
        assert_eq!(
            expanded("my_sensors ; period_ms = 500"),
            quote!(my_sensors::__unikernel::component::entry!(
                my_sensors::Thermo,
                my_sensors::Options { period_ms: 500u32 }
            ))
            .to_string()
        );
    }

    #[test]
    fn a_grammar_error_is_reported_and_the_default_entry_follows() {
        let out = expanded("my_sensors ; period = 500");
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("Unknown field: `period`"), "{out}");
        assert!(out.contains("entry ! (my_sensors :: Thermo , :: core :: default :: Default :: default ())"), "{out}");
    }
}
