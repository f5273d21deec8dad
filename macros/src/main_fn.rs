//! Checks that the annotated function can be a unikernel's `main` or a test.

use darling::Error;
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
