//! Paths to crates as the application's Cargo.toml names them.

use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use std::path::{Path, PathBuf};

/// The facade crate, `::unikernel` unless renamed. It is published as
/// `unikernel-rt` with the library name `unikernel`: a dependency keyed
/// `unikernel-rt` is still `unikernel` in code (proc-macro-crate cannot know
/// library names), one keyed otherwise (`unikernel = { package = ... }`) is
/// its key.
pub fn facade() -> TokenStream {
    match crate_name("unikernel-rt") {
        Ok(FoundCrate::Name(name)) if name != "unikernel_rt" => {
            let ident = format_ident!("{name}");
            quote!(::#ident)
        }
        // `Itself` only happens in the facade's own examples and tests,
        // which are separate crates that see it as `unikernel`.
        Ok(_) | Err(_) => quote!(::unikernel),
    }
}

/// A component crate, or an error naming the dependency to add.
pub fn component(package: &str, name: &str, span: Span) -> syn::Result<TokenStream> {
    match crate_name(package) {
        Ok(FoundCrate::Name(krate)) => {
            let ident = format_ident!("{krate}", span = span);
            Ok(quote!(::#ident))
        }
        // The component's own examples and tests see it by its crate name.
        Ok(FoundCrate::Itself) => {
            let ident = format_ident!("{}", package.replace('-', "_"), span = span);
            Ok(quote!(::#ident))
        }
        Err(_) => Err(syn::Error::new(
            span,
            format!(
                "component `{name}` is implemented by the crate `{package}`, which is not a dependency of this crate: add this line to [dependencies] in Cargo.toml\n{}",
                dependency_line(package)
            ),
        )),
    }
}

/// The `[dependencies]` line that brings in `package`: a path into the
/// clone this macro was built from (the crates are not published yet, so
/// `cargo add` cannot find them), or the version this macro has.
fn dependency_line(package: &str) -> String {
    let clone = Path::new(env!("CARGO_MANIFEST_DIR")).parent();
    match clone.and_then(|root| workspace_crate(root, package)) {
        // Debug quoting is a valid TOML basic string for any printable path.
        Some(path) => format!("{package} = {{ path = {:?} }}", path.display().to_string()),
        None => format!("{package} = \"{}\"", env!("CARGO_PKG_VERSION")),
    }
}

/// Where the workspace at `root` keeps `package`, from its
/// `[workspace.dependencies]`, if that crate is there.
fn workspace_crate(root: &Path, package: &str) -> Option<PathBuf> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).ok()?;
    let doc = toml_edit::Document::parse(manifest).ok()?;
    let relative = doc.get("workspace")?.get("dependencies")?.get(package)?.get("path")?.as_str()?;
    let dir = root.join(relative);
    dir.join("Cargo.toml").is_file().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::component;
    use proc_macro2::Span;

    #[test]
    fn a_component_crate_that_is_not_a_dependency_is_named_in_the_error() {
        // This crate's own manifest does not depend on `unikernel-entropy`.
        let err = component("unikernel-entropy", "entropy", Span::call_site()).unwrap_err().to_string();
        let clone = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert_eq!(
            err,
            format!(
                "component `entropy` is implemented by the crate `unikernel-entropy`, which is not a dependency of this crate: add this line to [dependencies] in Cargo.toml\n\
                 unikernel-entropy = {{ path = {:?} }}",
                clone.join("devices/entropy").display().to_string()
            )
        );
    }
}
