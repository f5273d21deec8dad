//! `zone!("path/to/zone")`: the master file (RFC 1035 §5), relative to the
//! calling crate's `Cargo.toml`, is parsed while the crate compiles, by
//! `domain`'s scanner, and checked (one SOA, at the apex; every owner
//! inside the zone; class IN; no `$INCLUDE`). The expansion is the zone's
//! records in wire format ([`compile`]), a `&'static [u8]` that
//! `unikernel_dns::Zone::new` indexes at boot. Errors are compile errors
//! pointing at the path.

use domain::base::iana::{Class, Rtype};
use domain::base::name::{ToLabelIter, ToName};
use domain::zonefile::inplace::{Entry, Zonefile};
use proc_macro::TokenStream;
use quote::quote;
use std::path::PathBuf;
use syn::{LitStr, parse_macro_input};

/// Embeds the zone in the master file at the given path (see the crate
/// documentation).
#[proc_macro]
pub fn zone(input: TokenStream) -> TokenStream {
    let path = parse_macro_input!(input as LitStr);
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_default();
    let full = dir.join(path.value());
    let compiled = std::fs::read_to_string(&full)
        .map_err(|e| format!("{}: {e}", full.display()))
        .and_then(|text| compile(&text).map_err(|e| format!("{}: {e}", full.display())));
    match compiled {
        Ok(wire) => {
            let full = full.to_string_lossy();
            let bytes = proc_macro2::Literal::byte_string(&wire);
            // `include_bytes!` makes cargo rebuild the caller when the file changes.
            quote!({
                const _: &[u8] = include_bytes!(#full);
                #bytes as &'static [u8]
            })
            .into()
        }
        Err(e) => syn::Error::new(path.span(), e).to_compile_error().into(),
    }
}

/// The zone in `text` as its records in wire format (owner, type, class,
/// TTL, length, data; no compression), SOA first. Names keep their case.
pub(crate) fn compile(text: &str) -> Result<Vec<u8>, String> {
    let mut scanner = Zonefile::with_capacity(text.len());
    scanner.extend_from_slice(text.as_bytes());
    let (mut soa, mut rest) = (Vec::new(), Vec::new());
    let mut apex = None;
    let mut records = Vec::new();
    // Its errors say where, as line:column.
    while let Some(entry) = scanner.next_entry().map_err(|e| e.to_string())? {
        match entry {
            Entry::Record(record) => records.push(record),
            Entry::Include { .. } => return Err("$INCLUDE is not supported: put the zone in one file".into()),
        }
    }
    for record in &records {
        if record.class() != Class::IN {
            return Err(format!("{}: class {} (only IN is served)", record.owner(), record.class()));
        }
        if record.rtype() == Rtype::SOA {
            if apex.replace(record.owner().to_name::<Vec<u8>>()).is_some() {
                return Err("more than one SOA record".into());
            }
            record.compose(&mut soa).map_err(|_| "record too long")?;
        }
    }
    let apex = apex.ok_or("no SOA record: the zone's apex is its SOA's owner")?;
    for record in &records {
        if !record.owner().ends_with(&apex) {
            return Err(format!("{} is outside the zone {apex}", record.owner()));
        }
        if record.rtype() != Rtype::SOA {
            record.compose(&mut rest).map_err(|_| "record too long")?;
        }
    }
    soa.extend(rest);
    Ok(soa)
}

#[cfg(test)]
mod tests;
