//! Code generation for the three macros.

use crate::args::{self, Args};
use crate::main_fn;
use darling::Error;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn};

pub fn app(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => return with_parse_error(item, e),
    };
    let user_main = format_ident!("__unikernel_user_main", span = f.sig.ident.span());
    f.sig.ident = user_main.clone();
    app_for(args, &f).unwrap_or_else(|e| {
        // Keep the function (renamed) and a stand-in `main`, so the only
        // errors the user sees are the ones above, not knock-on ones.
        let errors = e.write_errors();
        quote! {
            #errors
            #[allow(dead_code, unused)]
            #f
            #[cfg(not(target_os = "none"))]
            fn main() {}
        }
    })
}

/// The item as written, after the error: while a function is half typed,
/// rust-analyzer still sees it and keeps completing inside it (and `main`
/// stays, so no "`main` function not found" follows).
fn with_parse_error(item: TokenStream, e: syn::Error) -> TokenStream {
    let error = e.into_compile_error();
    quote!(#error #[allow(dead_code, unused)] #item)
}

fn app_for(args: TokenStream, f: &ItemFn) -> darling::Result<TokenStream> {
    let args = args::parse(args);
    let mut errors = Error::accumulator();
    errors.handle(main_fn::check_signature(f, "`main`"));
    let args = errors.handle(args);
    if let Some(args) = &args {
        errors.handle(main_fn::check_handles(f, &args.components));
    }
    errors.finish()?;
    let args = args.expect("errors returned above");

    let unikernel = crate::paths::facade();
    let user_main = &f.sig.ident;
    let handles =
        f.sig.inputs.iter().zip(args.components.iter().filter(|c| c.spec.handle.is_some())).map(|(input, c)| {
            let FnArg::Typed(param) = input else { unreachable!("receivers were rejected") };
            let (ty, krate, handle) = (&param.ty, &c.krate, format_ident!("{}", c.spec.handle.expect("filtered")));
            // Spanned on the parameter's type: a same-named impostor type
            // is reported there.
            quote_spanned!(ty.span()=> {
                let handle = <#krate::#handle as #unikernel::__private::Handle>::take()?;
                let handle: #ty = handle;
                handle
            })
        });
    let call = quote!(#user_main(#(#handles),*));
    let run = termination(&unikernel, f, call);
    let app = application(&args, &unikernel, run)?;
    Ok(quote! {
        #f
        #app
    })
}

pub fn test_main(args: TokenStream) -> darling::Result<TokenStream> {
    let args = args::parse(args)?;
    let unikernel = crate::paths::facade();
    application(&args, &unikernel, quote!(#unikernel::__private::test_main()))
}

/// Turns the call of a `main` or test into `Result<(), Error>`; an `async`
/// one runs on the executor until it completes.
fn termination(unikernel: &TokenStream, f: &ItemFn, call: TokenStream) -> TokenStream {
    let call = match f.sig.asyncness {
        Some(_) => quote!(#unikernel::__private::block_on(#call)),
        None => call,
    };
    quote!(#unikernel::__private::Termination::into_result(#call))
}

/// The registry entries, the component records for the runner, and the
/// `App` static with the target entry points; `run` is the body of `main`.
fn application(args: &Args, unikernel: &TokenStream, run: TokenStream) -> darling::Result<TokenStream> {
    let registrations = args.components.iter().map(|c| {
        let (krate, options, name) = (&c.krate, &c.options, c.spec.name);
        let after = c.spec.after;
        let entry = format_ident!("__UNIKERNEL_COMPONENT_{}", name.to_uppercase().replace('-', "_"));
        quote! {
            #[#unikernel::__private::linkme::distributed_slice(#unikernel::__private::COMPONENTS)]
            #[linkme(crate = #unikernel::__private::linkme)]
            static #entry: #unikernel::__private::Component = #unikernel::__private::Component {
                name: #name,
                after: &[#(#after),*],
                init: || #krate::__component::init(&#options),
            };
        }
    });
    let names = args.components.iter().map(|c| c.spec.name);
    let named = args.components.len();
    let log_level = args.globals.log_level()?;
    let stack_size = args.globals.stack_size()? as usize;
    let heap_size = args.globals.heap_size()?;
    Ok(quote! {
        #(#registrations)*

        /// The components of this image, for the runner; the components'
        /// crates add the devices they need to the same section.
        #[used]
        #[unsafe(link_section = ".unikernel.vmm")]
        static __UNIKERNEL_COMPONENT_RECORDS: [[u8; #unikernel::__private::vmm::SIZE]; #named] =
            [#(#unikernel::__private::vmm::Record::component(#names).encode()),*];

        #[cfg_attr(target_os = "none", unsafe(no_mangle))]
        static __UNIKERNEL_APP: #unikernel::__private::App = #unikernel::__private::App {
            config: #unikernel::__private::Config {
                log_level: #unikernel::__private::LevelFilter::#log_level,
                heap_size: #heap_size,
                stack_size: #stack_size,
            },
            main: || #run,
        };

        #[cfg(not(target_os = "none"))]
        fn main() {
            #unikernel::__private::hosted_start(&__UNIKERNEL_APP)
        }
    })
}

pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => return with_parse_error(item, e),
    };
    test_for(args, &f).unwrap_or_else(|e| {
        let errors = e.write_errors();
        quote!(#errors #[allow(dead_code, unused)] #f)
    })
}

fn test_for(args: TokenStream, f: &ItemFn) -> darling::Result<TokenStream> {
    let mut errors = Error::accumulator();
    if !args.is_empty() {
        errors.push(Error::custom("`#[unikernel::test]` takes no arguments").with_span(&args));
    }
    errors.handle(main_fn::check_signature(f, "a test"));
    if let Some(param) = f.sig.inputs.first() {
        errors.push(Error::custom("a test takes no parameters").with_span(param));
    }
    errors.finish()?;
    let unikernel = crate::paths::facade();
    let name = &f.sig.ident;
    let run = termination(&unikernel, f, quote!(#name()));
    let entry = format_ident!("__UNIKERNEL_TEST_{}", name.unraw().to_string().to_uppercase());
    Ok(quote! {
        #f

        #[#unikernel::__private::linkme::distributed_slice(#unikernel::__private::TESTS)]
        #[linkme(crate = #unikernel::__private::linkme)]
        static #entry: #unikernel::__private::Test = #unikernel::__private::Test {
            name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
            run: || #run,
        };
    })
}
