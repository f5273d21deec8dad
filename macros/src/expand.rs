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
    errors.finish()?;
    let args = args.expect("errors returned above");

    let unikernel = crate::paths::facade();
    let user_main = &f.sig.ident;
    let params: Vec<&syn::Type> = f
        .sig
        .inputs
        .iter()
        .map(|input| match input {
            FnArg::Typed(param) => &*param.ty,
            FnArg::Receiver(_) => unreachable!("receivers were rejected"),
        })
        .collect();
    // Spanned on each parameter's type: a type that is not a handle is
    // reported there.
    let handles = params.iter().map(|ty| quote_spanned!(ty.span()=> <#ty as #unikernel::__private::Handle>::take()?));
    let call = quote!(#user_main(#(#handles),*));
    let run = termination(&unikernel, f, call);
    let app = application(&args, &params, &unikernel, run)?;
    Ok(quote! {
        #f
        #app
    })
}

pub fn test_main(args: TokenStream) -> darling::Result<TokenStream> {
    let args = args::parse(args)?;
    let unikernel = crate::paths::facade();
    application(&args, &[], &unikernel, quote!(#unikernel::__private::test_main()))
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
///
/// Each component the attribute names is its macro's call with the user's
/// tokens (`net!{ip = "10.0.2.15/24"}`), so the component's crate checks
/// them; each parameter of `main` adds its handle's component with default
/// options, which the runtime drops when the attribute names it too.
fn application(
    args: &Args,
    params: &[&syn::Type],
    unikernel: &TokenStream,
    run: TokenStream,
) -> darling::Result<TokenStream> {
    let named: Vec<_> = (0..args.components.len()).map(|i| format_ident!("__UNIKERNEL_NAMED_{i}")).collect();
    let named_entries = args.components.iter().zip(&named).map(|(c, name)| {
        let (path, options) = (&c.path, &c.options);
        quote!(const #name: #unikernel::__private::Entry = #path!{ #options };)
    });
    let by_param: Vec<_> = (0..params.len()).map(|i| format_ident!("__UNIKERNEL_PARAM_{i}")).collect();
    let param_entries = params.iter().zip(&by_param).map(|(ty, name)| {
        quote_spanned!(ty.span()=>
            const #name: #unikernel::__private::Entry =
                #unikernel::__private::Entry::default_of::<<#ty as #unikernel::__private::Handle>::Component>();
        )
    });
    let all: Vec<_> = named.iter().chain(&by_param).collect();
    let registrations = all.iter().map(|entry| {
        let slot = format_ident!("{entry}_SLOT");
        quote! {
            #[#unikernel::__private::linkme::distributed_slice(#unikernel::__private::COMPONENTS)]
            #[linkme(crate = #unikernel::__private::linkme)]
            static #slot: #unikernel::__private::Entry = #entry;
        }
    });
    // An image without components links none of the registry's code.
    let start_components = match all.is_empty() {
        true => quote!(#unikernel::__private::no_components),
        false => quote!(#unikernel::__private::init_components),
    };
    let declared = args.globals.forwards(unikernel)?;
    // Records for the runner: each forward, or, for "none", one that
    // forwards nothing; the same list in the App for the hosted target.
    let (forward_records, config_forwards) = match &declared {
        None => (Vec::new(), quote!(::core::option::Option::None)),
        Some(forwards) if forwards.is_empty() => (
            vec![quote!(#unikernel::__private::vmm::Record::no_forward("main"))],
            quote!(::core::option::Option::Some(&[])),
        ),
        Some(forwards) => (
            forwards.iter().map(|f| quote!(#unikernel::__private::vmm::Record::forward(#f, "main"))).collect(),
            quote!(::core::option::Option::Some(&[#(#forwards),*])),
        ),
    };
    let forward_count = forward_records.len();
    let log_level = args.globals.log_level()?;
    let stack_size = args.globals.stack_size()? as usize;
    let heap_size = args.globals.heap_size()?;
    Ok(quote! {
        #(#named_entries)*
        #(#param_entries)*
        // Two paths to one component's macro (`net` and `unikernel_net::net`).
        const _: () = #unikernel::__private::check_distinct(&[#(#named.name),*]);
        #(#registrations)*

        /// The components of this image, each once with what it needs from
        /// the VMM, for the runner.
        const __UNIKERNEL_ENTRIES: &[#unikernel::__private::Entry] = &[#(#all),*];
        #[used]
        #[unsafe(link_section = ".unikernel.vmm")]
        static __UNIKERNEL_COMPONENT_RECORDS: [[u8; #unikernel::__private::vmm::SIZE];
            #unikernel::__private::records_len(__UNIKERNEL_ENTRIES)] =
            #unikernel::__private::component_records(__UNIKERNEL_ENTRIES);

        /// The application's default forwards, for the runner.
        #[used]
        #[unsafe(link_section = ".unikernel.vmm")]
        static __UNIKERNEL_FORWARD_RECORDS: [[u8; #unikernel::__private::vmm::SIZE]; #forward_count] =
            [#(#forward_records.encode()),*];

        #[cfg_attr(target_os = "none", unsafe(no_mangle))]
        static __UNIKERNEL_APP: #unikernel::__private::App = #unikernel::__private::App {
            config: #unikernel::__private::Config {
                log_level: #unikernel::__private::LevelFilter::#log_level,
                heap_size: #heap_size,
                stack_size: #stack_size,
                forwards: #config_forwards,
            },
            components: #start_components,
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
