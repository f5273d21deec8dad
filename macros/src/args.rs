//! The arguments of `#[unikernel(...)]`: components, each the path of the
//! macro its crate exports (`entropy`, `my_sensors::thermo(period_ms = 500)`),
//! and global options (`log = "debug"`). The macro knows no component: it
//! calls each path's macro with the options as written, and the component's
//! own code checks them.

use darling::ast::NestedMeta;
use darling::{Error, FromMeta};
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Ident, LitStr, Meta, Path};
use unikernel_core::forward::{Forward, Protocol};

/// A component as named in the attribute.
pub struct Named {
    /// The path of the component's macro, as the user wrote it.
    pub path: Path,
    /// The tokens between its parentheses, for that macro.
    pub options: TokenStream,
}

#[derive(FromMeta, Default)]
pub struct Globals {
    /// Log level unless the command line says `log=LEVEL`.
    log: Option<LitStr>,
    /// Stack of `main`, e.g. "256K" (default) or "1M".
    stack_size: Option<LitStr>,
    /// Upper bound of the heap, e.g. "16M"; default: all free RAM.
    heap_size: Option<LitStr>,
    /// Port forwards the application asks for by default, e.g.
    /// "udp:5353:53, tcp:5353:53", or "none".
    forward: Option<LitStr>,
}

pub struct Args {
    /// Named components, in the order written.
    pub components: Vec<Named>,
    pub globals: Globals,
}

const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];
const DEFAULT_STACK: u64 = 256 * 1024;

pub fn parse(tokens: TokenStream) -> darling::Result<Args> {
    let items = NestedMeta::parse_meta_list(tokens)?;
    let mut errors = Error::accumulator();
    let mut components: Vec<Named> = Vec::new();
    let mut globals = Vec::new();
    for item in items {
        let (path, options) = match item {
            NestedMeta::Lit(lit) => {
                errors.push(
                    Error::custom("expected a component (the path of the macro its crate exports) or `option = value`")
                        .with_span(&lit),
                );
                continue;
            }
            NestedMeta::Meta(meta @ Meta::NameValue(_)) => {
                globals.push(NestedMeta::Meta(meta));
                continue;
            }
            NestedMeta::Meta(Meta::Path(path)) => (path, TokenStream::new()),
            NestedMeta::Meta(Meta::List(list)) => (list.path, list.tokens),
        };
        let written = path.to_token_stream().to_string().replace(' ', "");
        if components.iter().any(|c| c.path.to_token_stream().to_string().replace(' ', "") == written) {
            errors.push(Error::custom(format!("component `{written}` is named twice")).with_span(&path));
            continue;
        }
        components.push(Named { path, options });
    }
    let globals = errors.handle(Globals::from_list(&globals)).unwrap_or_default();
    errors.finish()?;
    Ok(Args { components, globals })
}

impl Globals {
    pub fn log_level(&self) -> darling::Result<TokenStream> {
        let Some(lit) = &self.log else {
            return Ok(quote!(Info));
        };
        let value = lit.value().to_ascii_lowercase();
        if !LEVELS.contains(&value.as_str()) {
            return Err(Error::custom(format!(
                "unknown log level `{}`: expected one of {}",
                lit.value(),
                LEVELS.join(", ")
            ))
            .with_span(lit));
        }
        let mut level = value;
        level[..1].make_ascii_uppercase();
        Ok(Ident::new(&level, lit.span()).into_token_stream())
    }

    pub fn stack_size(&self) -> darling::Result<u64> {
        self.stack_size.as_ref().map_or(Ok(DEFAULT_STACK), |lit| {
            let size = parse_size(lit)?;
            if size < 16 * 1024 {
                return Err(Error::custom("stack_size must be at least 16K").with_span(lit));
            }
            Ok(size)
        })
    }

    pub fn heap_size(&self) -> darling::Result<TokenStream> {
        match &self.heap_size {
            None => Ok(quote!(None)),
            Some(lit) => {
                let size = parse_size(lit)?;
                let min = unikernel_core::runtime::MIN_HEAP;
                if size < min as u64 {
                    return Err(Error::custom(format!("heap_size must be at least {}K", min >> 10)).with_span(lit));
                }
                let size = size as usize;
                Ok(quote!(Some(#size)))
            }
        }
    }
}

impl Globals {
    /// The `forward` list as `Forward` expressions, in `unikernel_core`'s
    /// grammar (the runner's `--forward`), each host port once; `None` when
    /// not given, an empty list for `"none"`.
    pub fn forwards(&self, unikernel: &TokenStream) -> darling::Result<Option<Vec<TokenStream>>> {
        let Some(lit) = &self.forward else {
            return Ok(None);
        };
        let text = lit.value();
        if text.trim() == "none" {
            return Ok(Some(Vec::new()));
        }
        let mut forwards: Vec<Forward> = Vec::new();
        for forward in Forward::parse_list(&text) {
            let forward = forward.map_err(|e| Error::custom(e).with_span(lit))?;
            if forwards.iter().any(|f| f.protocol == forward.protocol && f.host == forward.host) {
                let message = format!("host port {}:{} is forwarded twice", forward.protocol.name(), forward.host);
                return Err(Error::custom(message).with_span(lit));
            }
            forwards.push(forward);
        }
        Ok(Some(
            forwards
                .iter()
                .map(|f| {
                    let protocol = Ident::new(if f.protocol == Protocol::Tcp { "Tcp" } else { "Udp" }, lit.span());
                    let (host, guest) = (f.host, f.guest);
                    quote!(#unikernel::__private::forward::Forward {
                        protocol: #unikernel::__private::forward::Protocol::#protocol, host: #host, guest: #guest,
                    })
                })
                .collect(),
        ))
    }
}

/// "4096", "256K", "16M", "1G" (binary units).
fn parse_size(lit: &LitStr) -> darling::Result<u64> {
    let value = lit.value();
    let text = value.trim();
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'K' | b'k') => (&text[..text.len() - 1], 10),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 20),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    digits.trim().parse::<u64>().ok().and_then(|n| n.checked_mul(1 << shift)).filter(|n| *n > 0).ok_or_else(|| {
        Error::custom(format!("invalid size `{text}`: expected bytes or a number with K, M or G, like \"256K\""))
            .with_span(lit)
    })
}
