//! Paths to crates as the application's Cargo.toml names them.

use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};

/// The facade crate, `::unikernel` unless renamed.
pub fn facade() -> TokenStream {
    match crate_name("unikernel") {
        Ok(FoundCrate::Name(name)) => {
            let ident = format_ident!("{name}");
            quote!(::#ident)
        }
        // `Itself` only happens in the facade's own examples and tests,
        // which are separate crates that see it as `unikernel`.
        Ok(FoundCrate::Itself) | Err(_) => quote!(::unikernel),
    }
}

/// A component crate, or an error naming the dependency to add.
pub fn component(package: &str, name: &str, span: Span) -> syn::Result<TokenStream> {
    match crate_name(package) {
        Ok(FoundCrate::Name(krate)) => {
            let ident = format_ident!("{krate}", span = span);
            Ok(quote!(::#ident))
        }
        // The component's own examples and tests see it by its crate name.
        Ok(FoundCrate::Itself) => {
            let ident = format_ident!("{}", package.replace('-', "_"), span = span);
            Ok(quote!(::#ident))
        }
        Err(_) => Err(syn::Error::new(
            span,
            format!(
                "component `{name}` is implemented by the crate `{package}`, which is not a dependency of this crate: add `{package}` to [dependencies] in Cargo.toml"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::component;
    use proc_macro2::Span;

    #[test]
    fn a_component_crate_that_is_not_a_dependency_is_named_in_the_error() {
        // This crate's own manifest does not depend on `unikernel-entropy`.
        let err = component("unikernel-entropy", "entropy", Span::call_site()).unwrap_err().to_string();
        assert_eq!(
            err,
            "component `entropy` is implemented by the crate `unikernel-entropy`, which is not a dependency of this crate: add `unikernel-entropy` to [dependencies] in Cargo.toml"
        );
    }
}
