//! `net(...)`'s options, checked at compile time with errors on the
//! offending token: `net`, `net(dhcp)` or
//! `net(ip = "10.0.2.15/24", gateway = "10.0.2.2", dns = "10.0.2.3")`.
//! Called through `unikernel_net::net!`, which passes its `$crate` first.
#![forbid(unsafe_code)]

use darling::{FromMeta, ast::NestedMeta, util::Flag};
use proc_macro2::TokenStream;
use quote::quote;
use std::net::Ipv4Addr;
use syn::LitStr;

/// `$crate ; OPTIONS` to the `net` component's entry.
#[proc_macro]
pub fn options(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    unikernel_options::expand(input.into(), "Net", grammar).into()
}

#[derive(FromMeta, Default)]
struct Options {
    dhcp: Flag,
    ip: Option<LitStr>,
    gateway: Option<LitStr>,
    dns: Option<LitStr>,
}

fn grammar(items: &[NestedMeta], krate: &TokenStream) -> darling::Result<TokenStream> {
    let o = Options::from_list(items)?;
    let Some(ip) = &o.ip else {
        if let Some(lit) = o.gateway.as_ref().or(o.dns.as_ref()) {
            return Err(darling::Error::custom("`gateway` and `dns` need a static `ip`").with_span(lit));
        }
        return Ok(quote!(#krate::Options { config: #krate::Config::Dhcp }));
    };
    if o.dhcp.is_present() {
        return Err(darling::Error::custom("`dhcp` and a static `ip` exclude each other").with_span(&o.dhcp.span()));
    }
    let value = ip.value();
    let (address, prefix_len) = value
        .split_once('/')
        .and_then(|(a, l)| Some((a.parse::<Ipv4Addr>().ok()?, l.parse::<u8>().ok().filter(|l| *l <= 32)?)))
        .ok_or_else(|| {
            darling::Error::custom("expected an address with a prefix length, like \"10.0.2.15/24\"").with_span(ip)
        })?;
    let address = address_tokens(address);
    let (gateway, dns) = (optional(o.gateway.as_ref())?, optional(o.dns.as_ref())?);
    Ok(quote!(#krate::Options {
        config: #krate::Config::Static(#krate::Static { address: #address, prefix_len: #prefix_len, gateway: #gateway, dns: #dns }),
    }))
}

fn address(lit: &LitStr) -> darling::Result<TokenStream> {
    let ip: Ipv4Addr = lit
        .value()
        .parse()
        .map_err(|_| darling::Error::custom("expected an IPv4 address like \"10.0.2.2\"").with_span(lit))?;
    Ok(address_tokens(ip))
}

fn optional(lit: Option<&LitStr>) -> darling::Result<TokenStream> {
    Ok(match lit.map(address).transpose()? {
        Some(ip) => quote!(::core::option::Option::Some(#ip)),
        None => quote!(::core::option::Option::None),
    })
}

fn address_tokens(ip: Ipv4Addr) -> TokenStream {
    let [a, b, c, d] = ip.octets();
    quote!(::core::net::Ipv4Addr::new(#a, #b, #c, #d))
}
