//! `#[derive(Event)]`: an event enum's type names and schema versions,
//! computed from the enum itself.
//!
//! By hand, `Event::schema_version` is a `match` on type-name strings, where
//! a typo (or a later `#[serde(rename)]`) silently makes a version 1 again,
//! and nothing lists the type names at all. The derive reads each variant's
//! name the way serde writes it (see `serde_names`) and its
//! `#[event(version = N)]`, and refuses at compile time what would corrupt
//! the store: two variants with one type name, a version 0, a serde
//! representation the codec cannot store.

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Data, DeriveInput, LitInt, LitStr};

use crate::krate::crate_path;
use crate::serde_names::{enum_naming, variant_name};

/// One variant's contribution: its type name and, if not 1, its version.
struct EventType {
    name: String,
    version: Option<u32>,
}

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "#[derive(Event)] goes on an enum with one variant per event type \
             (e.g. `enum AccountEvent { Opened { owner: String }, Deposited { cents: i64 } }`); \
             wrap this type in a variant of such an enum",
        ));
    };
    let krate = crate_path(&input.attrs, "event")?;
    let naming = enum_naming(&input.attrs)?;

    let mut types = Vec::new();
    let mut seen: HashMap<String, syn::Ident> = HashMap::new();
    let mut errors: Option<syn::Error> = None;
    for variant in &data.variants {
        let named = variant_name(&naming, variant)?;
        let version = variant_version(&variant.attrs)?;
        if named.skipped {
            if let Some(version) = version {
                push(
                    &mut errors,
                    syn::Error::new(
                        version.1.span(),
                        "this variant is #[serde(skip)]ped, so it is never stored: remove its \
                     #[event(version)] or the skip",
                    ),
                );
            }
            continue;
        }
        if let Some(first) = seen.get(&named.name) {
            push(
                &mut errors,
                syn::Error::new(
                    named.span,
                    format!(
                        "variants `{first}` and `{}` both have the event type name \"{}\": \
                         stored events of this type would all load as `{first}`; give one \
                         of them another name with #[serde(rename = \"...\")]",
                        variant.ident, named.name
                    ),
                ),
            );
            continue;
        }
        seen.insert(named.name.clone(), variant.ident.clone());
        types.push(EventType {
            name: named.name,
            version: version.map(|(version, _)| version),
        });
    }
    if let Some(errors) = errors {
        return Err(errors);
    }

    let ident = &input.ident;
    // A generic enum is an event when it has what `Event` requires, however
    // its parameters are bounded (serde's derives bound them their own way).
    let mut generics = input.generics.clone();
    if !generics.params.is_empty() {
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!(
                Self: #krate::__private::serde::Serialize
                    + #krate::__private::serde::de::DeserializeOwned
                    + ::core::marker::Send
                    + ::core::marker::Sync
                    + 'static
            ));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let names = types.iter().map(|ty| &ty.name);
    let versioned: Vec<_> = types
        .iter()
        .filter_map(|ty| ty.version.filter(|v| *v != 1).map(|v| (&ty.name, v)))
        .collect();
    let schema_version = if versioned.is_empty() {
        // Every type is at version 1: the trait's default says so.
        TokenStream::new()
    } else {
        let arms = versioned
            .iter()
            .map(|(name, version)| quote!(#name => #version,));
        quote! {
            fn schema_version(event_type: &str) -> u32 {
                match event_type {
                    #(#arms)*
                    _ => 1,
                }
            }
        }
    };
    Ok(quote! {
        impl #impl_generics #krate::Event for #ident #ty_generics #where_clause {
            #schema_version

            fn event_types() -> &'static [&'static str] {
                &[#(#names),*]
            }
        }
    })
}

/// Adds `error` to the errors reported together.
fn push(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(errors) => errors.combine(error),
        None => *errors = Some(error),
    }
}

/// A variant's `#[event(version = N)]`, with the literal for errors.
fn variant_version(attrs: &[Attribute]) -> syn::Result<Option<(u32, LitInt)>> {
    let mut version = None;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("event")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("version") {
                let lit: LitInt = meta.value()?.parse()?;
                let value: u32 = lit.base10_parse().map_err(|_| {
                    syn::Error::new(
                        lit.span(),
                        "a schema version is a whole number from 1 to u32::MAX",
                    )
                })?;
                if value == 0 {
                    return Err(syn::Error::new(
                        lit.span(),
                        "schema versions start at 1 (what an event without \
                         #[event(version)] has): use 1, or 2 for the first changed shape",
                    ));
                }
                version = Some((value, lit));
                Ok(())
            } else if meta.path.is_ident("rename") {
                let _: LitStr = meta.value()?.parse()?;
                Err(meta.error(
                    "an event's type name is the name serde writes, so that the two can never \
                     disagree: write #[serde(rename = \"...\")] instead; to load events stored \
                     under an old name, register `Upcasters::rename(old, version, new, version)`",
                ))
            } else if meta.path.is_ident("crate") {
                Err(meta.error("#[event(crate = ...)] goes on the enum, not on a variant"))
            } else {
                Err(meta.error(
                    "unknown #[event] key on a variant: the only one is `version = N` \
                     (the current schema version of this event type)",
                ))
            }
        })?;
    }
    Ok(version)
}
