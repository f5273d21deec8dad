//! The arguments of `#[unikernel(...)]`: components (`entropy`,
//! `entropy(source = "rdseed")`) and global options (`log = "debug"`).

use crate::components::{self, Spec};
use darling::ast::NestedMeta;
use darling::{Error, FromMeta};
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Ident, LitStr, Meta};

/// A component as named in the attribute.
pub struct Named {
    pub ident: Ident,
    pub spec: &'static Spec,
    /// Path to the component crate.
    pub krate: TokenStream,
    /// An expression of the crate's `Options` type.
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
}

pub struct Args {
    /// Named components, then the ones they need, each once.
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
        let meta = match item {
            NestedMeta::Meta(meta) => meta,
            NestedMeta::Lit(lit) => {
                errors.push(Error::custom("expected a component name or `option = value`").with_span(&lit));
                continue;
            }
        };
        if let Meta::NameValue(_) = meta {
            globals.push(NestedMeta::Meta(meta));
            continue;
        }
        let Some(ident) = meta.path().get_ident().cloned() else {
            errors.push(Error::custom("expected a component name").with_span(meta.path()));
            continue;
        };
        let Some(spec) = components::find(&ident.to_string()) else {
            errors.push(unknown_component(&ident));
            continue;
        };
        if components.iter().any(|c| c.ident == ident) {
            errors.push(Error::custom(format!("component `{ident}` is named twice")).with_span(&ident));
            continue;
        }
        let krate = match crate::paths::component(spec.package, spec.name, ident.span()) {
            Ok(krate) => krate,
            Err(e) => {
                errors.push(e.into());
                continue;
            }
        };
        let nested = match &meta {
            Meta::List(list) => match NestedMeta::parse_meta_list(list.tokens.clone()) {
                Ok(nested) => nested,
                Err(e) => {
                    errors.push(e.into());
                    continue;
                }
            },
            _ => Vec::new(),
        };
        if let Some(options) = errors.handle((spec.options)(&nested, &krate)) {
            components.push(Named { ident, spec, krate, options });
        }
    }
    let globals = errors.handle(Globals::from_list(&globals)).unwrap_or_default();
    errors.finish()?;
    add_dependencies(&mut components)?;
    Ok(Args { components, globals })
}

fn unknown_component(ident: &Ident) -> Error {
    let name = ident.to_string();
    let known: Vec<&str> = components::KNOWN.iter().map(|s| s.name).collect();
    let nearest = known
        .iter()
        .map(|k| (strsim::jaro_winkler(&name, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let hint = nearest.map(|(_, k)| format!("; did you mean `{k}`?")).unwrap_or_default();
    Error::custom(format!("unknown component `{name}`{hint} (known components: {})", known.join(", "))).with_span(ident)
}

/// Components a named one starts after are linked too, with default options.
fn add_dependencies(components: &mut Vec<Named>) -> darling::Result<()> {
    let mut i = 0;
    while i < components.len() {
        for dep in components[i].spec.after {
            if components.iter().any(|c| c.spec.name == *dep) {
                continue;
            }
            let spec = components::find(dep).expect("components table names only known dependencies");
            let span = components[i].ident.span();
            let krate = crate::paths::component(spec.package, spec.name, span)?;
            let options = (spec.options)(&[], &krate)?;
            components.push(Named { ident: Ident::new(spec.name, span), spec, krate, options });
        }
        i += 1;
    }
    Ok(())
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
