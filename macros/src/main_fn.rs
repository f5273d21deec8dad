//! Checks that the annotated function can be a unikernel's `main` or a test.

use crate::args::Named;
use darling::Error;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

/// What every entry point (main or test) must not be.
pub fn check_signature(f: &ItemFn, what: &str) -> darling::Result<()> {
    let mut errors = Error::accumulator();
    let sig = &f.sig;
    if let Some(token) = sig.unsafety {
        errors.push(Error::custom(format!("{what} cannot be `unsafe`")).with_span(&token));
    }
    if let Some(token) = sig.constness {
        errors.push(Error::custom(format!("{what} cannot be `const`")).with_span(&token));
    }
    if let Some(abi) = &sig.abi {
        errors.push(Error::custom(format!("{what} cannot have an ABI")).with_span(abi));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(Error::custom(format!("{what} cannot be generic")).with_span(&sig.generics));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(Error::custom(format!("{what} cannot be variadic")).with_span(variadic));
    }
    for input in &sig.inputs {
        if let FnArg::Receiver(receiver) = input {
            errors.push(
                Error::custom(format!("{what} cannot take `self`: it must be a free function")).with_span(receiver),
            );
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output
        && !returns_unit_or_result(ty)
    {
        errors.push(Error::custom(format!("{what} must return `()` or `Result<(), Error>`")).with_span(ty));
    }
    errors.finish()
}

/// `()`, or a `Result` whose success type (when written) is `()`.
fn returns_unit_or_result(ty: &Type) -> bool {
    let is_unit = |ty: &Type| matches!(ty, Type::Tuple(t) if t.elems.is_empty());
    match ty {
        Type::Paren(p) => returns_unit_or_result(&p.elem),
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().is_some_and(|s| {
            s.ident == "Result"
                && match &s.arguments {
                    syn::PathArguments::AngleBracketed(args) => {
                        matches!(args.args.first(), Some(syn::GenericArgument::Type(ok)) if is_unit(ok))
                    }
                    _ => true,
                }
        }),
        other => is_unit(other),
    }
}

/// `main` takes one handle per component that has one, in the order the
/// components were named.
pub fn check_handles(f: &ItemFn, components: &[Named]) -> darling::Result<()> {
    let mut errors = Error::accumulator();
    let expected: Vec<(&Named, &str)> = components.iter().filter_map(|c| c.spec.handle.map(|h| (c, h))).collect();
    let params: Vec<&syn::PatType> = f
        .sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            FnArg::Receiver(_) => None,
        })
        .collect();
    // Parameter types are checked by the compiler, against the handles the
    // expansion passes (so aliases and full paths work); here, the count.
    let hint = if expected.is_empty() {
        "no named component provides a handle".to_string()
    } else {
        format!(
            "the named components provide {}",
            list(expected.iter().map(|(c, h)| format!("`{h}` ({})", c.spec.name)))
        )
    };
    for param in params.iter().skip(expected.len()) {
        let found = param.ty.to_token_stream().to_string().replace(' ', "");
        errors.push(
            Error::custom(format!("parameter of type `{found}` matches no component: {hint}")).with_span(&param.ty),
        );
    }
    for (component, handle) in expected.iter().skip(params.len()) {
        let span =
            if params.is_empty() { f.sig.paren_token.span.join() } else { params.last().expect("not empty").span() };
        let message = format!(
            "component `{0}` provides a handle: add a parameter `{0}: {handle}` to `main`",
            component.spec.name
        );
        errors.push(syn::Error::new(span, message).into());
    }
    errors.finish()
}

fn list(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}
