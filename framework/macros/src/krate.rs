//! The path generated code names the framework by.
//!
//! A derive cannot know how the user's crate reaches the framework. The
//! default is `::composable_rust`, the facade applications depend on;
//! a crate that depends on `composable-rust-core` directly says so with
//! `#[event(crate = composable_rust_core)]` (or `#[action(crate = ...)]`),
//! as serde's `#[serde(crate = "...")]` does. See ADR-018.

use syn::{Attribute, Path};

/// The path generated code names the framework by: `::composable_rust`
/// (the facade, what applications depend on) unless the item says
/// `#[<helper>(crate = path)]`, e.g. `composable_rust_core` in a crate that
/// depends on the core directly. `helper` is the derive's attribute name.
pub(crate) fn crate_path(attrs: &[Attribute], helper: &str) -> syn::Result<Path> {
    let mut krate: Path = syn::parse_quote!(::composable_rust);
    for attr in attrs.iter().filter(|attr| attr.path().is_ident(helper)) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                krate = meta.value()?.parse()?;
                Ok(())
            } else if meta.path.is_ident("version") {
                Err(meta.error(format!(
                    "#[{helper}(version = N)] goes on the variant whose schema version it is"
                )))
            } else {
                Err(meta.error(format!(
                    "unknown #[{helper}] key on the enum: the only one is `crate = path` \
                     (the path of composable_rust, if it is not `::composable_rust`)"
                )))
            }
        })?;
    }
    Ok(krate)
}
