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

pub const KNOWN: &[Spec] = &[
    Spec {
        name: "entropy",
        package: "unikernel-entropy",
        handle: Some("Entropy"),
        after: &[],
        options: entropy::options,
    },
    Spec { name: "net", package: "unikernel-net", handle: Some("Net"), after: &[], options: net::options },
    Spec { name: "block", package: "unikernel-storage", handle: Some("Block"), after: &[], options: block::options },
];

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

mod net {
    use darling::util::Flag;
    use darling::{FromMeta, ast::NestedMeta};
    use proc_macro2::TokenStream;
    use quote::quote;
    use std::net::Ipv4Addr;
    use syn::LitStr;

    /// `net`, `net(dhcp)` or `net(ip = "10.0.2.15/24", gateway = "10.0.2.2", dns = "10.0.2.3")`.
    #[derive(FromMeta, Default)]
    struct Options {
        dhcp: Flag,
        ip: Option<LitStr>,
        gateway: Option<LitStr>,
        dns: Option<LitStr>,
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

    pub fn options(items: &[NestedMeta], krate: &TokenStream) -> darling::Result<TokenStream> {
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

    fn address_tokens(ip: Ipv4Addr) -> TokenStream {
        let [a, b, c, d] = ip.octets();
        quote!(::core::net::Ipv4Addr::new(#a, #b, #c, #d))
    }
}

mod block {
    use darling::{FromMeta, ast::NestedMeta};
    use proc_macro2::TokenStream;
    use quote::quote;

    /// `block` takes no options yet.
    #[derive(FromMeta, Default)]
    struct Options {}

    pub fn options(items: &[NestedMeta], krate: &TokenStream) -> darling::Result<TokenStream> {
        Options::from_list(items)?;
        Ok(quote!(#krate::Options {}))
    }
}
