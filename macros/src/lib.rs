//! `#[unikernel]`, `#[unikernel::test]` and `unikernel::test_main!`.
//!
//! The expansion is small on purpose: for `#[unikernel(entropy)] fn main(rng:
//! Entropy)` it renames the user's function, adds one registry entry per
//! component (the call of the component crate's `entropy!` macro, or the
//! handle type's component; either is the only mention that links the
//! component's crate), records the component names for the runner, and
//! defines the application static the boot code starts. It knows no
//! component: `cargo expand --example random` shows it.
#![forbid(unsafe_code)]

mod args;
mod expand;
mod main_fn;
mod paths;

use proc_macro::TokenStream;

/// Turns `main` into a unikernel's entry point.
///
/// Each parameter of `main` is a component's handle (`net: Net`), which
/// links and starts that component. Arguments: components to link without
/// a handle, or with options, each the path of the macro its crate exports
/// (`entropy(source = "rdseed")`, `my_sensors::thermo`), and global options
/// `log = "debug"`, `stack_size = "256K"`, `heap_size = "16M"`. `main`
/// returns `()` or `Result<(), E>`.
#[proc_macro_attribute]
pub fn unikernel(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::app(args.into(), item.into()).into()
}

/// Registers a function as an in-guest test (run by `test_main!`).
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::test(args.into(), item.into()).into()
}

/// Makes this crate a test image that runs every `#[unikernel::test]`.
/// Takes the same arguments as `#[unikernel(...)]`.
#[proc_macro]
pub fn test_main(args: TokenStream) -> TokenStream {
    expand::test_main(args.into()).unwrap_or_else(|e| e.write_errors()).into()
}
