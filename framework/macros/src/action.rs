//! `#[derive(Action)]`: which variants are commands and which are events,
//! and the conversions that let a parent action embed a child feature's.
//!
//! - `#[command]` / `#[event]` on variants generate the `Action` trait's
//!   `is_command` / `is_event`.
//! - `#[child]` on a newtype variant `Parent::V(ChildAction)` generates
//!   `From<ChildAction> for Parent` and `TryFrom<Parent> for ChildAction`,
//!   the two mappings `composable_rust::embed` needs, so composing a
//!   child feature takes no hand-written `match`.

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, GenericParam, Ident, Type};

use crate::krate::crate_path;

/// What a variant's markers say.
#[derive(Default)]
struct Markers {
    command: bool,
    event: bool,
    child: bool,
}

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "#[derive(Action)] goes on an action enum, with one variant per thing that \
             can happen (e.g. `enum DoorAction { #[command] Open, #[event] Opened }`)",
        ));
    };
    let krate = crate_path(&input.attrs, "action")?;
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();

    let mut commands = Vec::new();
    let mut events = Vec::new();
    let mut conversions = Vec::new();
    // Child types by their tokens: `From<X>` can exist once per type.
    let mut children: HashMap<String, Ident> = HashMap::new();
    for variant in &data.variants {
        let markers = markers(&variant.attrs)?;
        let name = &variant.ident;
        if markers.command {
            commands.push(quote!(Self::#name { .. }));
        }
        if markers.event {
            events.push(quote!(Self::#name { .. }));
        }
        if !markers.child {
            continue;
        }
        let child = newtype_field(variant.ident.span(), name, &variant.fields)?;
        if let Some(param) = generic_param(&input.generics.params, child) {
            return Err(syn::Error::new(
                child.span(),
                format!(
                    "#[child] needs a concrete action type, not the type parameter `{param}`: \
                     `TryFrom<{ident}<..>> for {param}` would be an impl for every type"
                ),
            ));
        }
        let key = child.to_token_stream().to_string();
        if let Some(first) = children.get(&key) {
            return Err(syn::Error::new(
                child.span(),
                format!(
                    "variants `{first}` and `{name}` both wrap `{key}`, and a `From<{key}>` \
                     can only choose one: keep #[child] on one of them, and embed the \
                     other with `scope`, writing its two mappings by hand"
                ),
            ));
        }
        children.insert(key, name.clone());
        conversions.push(quote! {
            impl #impl_generics ::core::convert::From<#child> for #ident #ty_generics #where_clause {
                fn from(action: #child) -> Self {
                    Self::#name(action)
                }
            }

            impl #impl_generics ::core::convert::TryFrom<#ident #ty_generics> for #child #where_clause {
                /// The action, given back: it is not this child's.
                type Error = #ident #ty_generics;

                fn try_from(
                    action: #ident #ty_generics,
                ) -> ::core::result::Result<Self, #ident #ty_generics> {
                    #[allow(unreachable_patterns)]
                    match action {
                        #ident::#name(action) => ::core::result::Result::Ok(action),
                        other => ::core::result::Result::Err(other),
                    }
                }
            }
        });
    }

    let is_command = any_of(&commands);
    let is_event = any_of(&events);
    Ok(quote! {
        impl #impl_generics #krate::Action for #ident #ty_generics #where_clause {
            fn is_command(&self) -> bool {
                #is_command
            }

            fn is_event(&self) -> bool {
                #is_event
            }
        }

        #(#conversions)*
    })
}

/// `matches!(self, A | B)`, or `false` for no variants.
fn any_of(patterns: &[TokenStream]) -> TokenStream {
    if patterns.is_empty() {
        quote!(false)
    } else {
        quote!(::core::matches!(self, #(#patterns)|*))
    }
}

/// Reads `#[command]`, `#[event]` and `#[child]`.
fn markers(attrs: &[Attribute]) -> syn::Result<Markers> {
    let mut markers = Markers::default();
    for attr in attrs {
        let slot = if attr.path().is_ident("command") {
            &mut markers.command
        } else if attr.path().is_ident("event") {
            &mut markers.event
        } else if attr.path().is_ident("child") {
            &mut markers.child
        } else {
            continue;
        };
        attr.meta.require_path_only().map_err(|_| {
            syn::Error::new(
                attr.span(),
                "in an action, #[command], #[event] and #[child] take no arguments",
            )
        })?;
        *slot = true;
        if markers.command && markers.event {
            return Err(syn::Error::new(
                attr.path().span(),
                "a variant is a command (something asked, which may be refused) or an \
                 event (something that happened), not both: keep one marker",
            ));
        }
    }
    Ok(markers)
}

/// The type of the only field of `Name(Type)`.
fn newtype_field<'a>(
    span: proc_macro2::Span,
    name: &Ident,
    fields: &'a Fields,
) -> syn::Result<&'a Type> {
    match fields {
        Fields::Unnamed(unnamed) if unnamed.unnamed.len() == 1 => Ok(&unnamed.unnamed[0].ty),
        _ => Err(syn::Error::new(
            span,
            format!(
                "#[child] goes on a variant that wraps one child action and nothing else, \
                 `{name}(ChildAction)`"
            ),
        )),
    }
}

/// The enum's type parameter that `ty` is, if it is one.
fn generic_param<'a>(
    params: &'a syn::punctuated::Punctuated<GenericParam, syn::Token![,]>,
    ty: &Type,
) -> Option<&'a Ident> {
    let Type::Path(path) = ty else { return None };
    let ident = path.path.get_ident()?;
    params.iter().find_map(|param| match param {
        GenericParam::Type(param) if param.ident == *ident => Some(&param.ident),
        _ => None,
    })
}
