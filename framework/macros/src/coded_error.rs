//! `#[coded_error]`: one place for a variant's code, retry class and
//! message.
//!
//! The attribute rewrites each variant's `#[error("...")]` into
//! `#[error("[{__code}] ...", __code = CODE)]` (so `thiserror`'s `Display`
//! starts with the code) and generates the `CodedError` impl from the same
//! `#[code(...)]` attributes, so a code is written once per variant.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Fields, Ident, ItemEnum, LitStr, Meta, Path, Token};

/// What a variant's `#[code(...)]` says.
#[allow(clippy::large_enum_variant)]
enum CodeSpec {
    /// `#[code(transparent)]`: code and class of the only field.
    Transparent,
    /// `#[code(CODE, class)]`.
    Own { code: Expr, class: ClassSpec },
}

/// The retry class of a variant.
enum ClassSpec {
    /// `transient`, `permanent` or `configuration`.
    Fixed(Ident),
    /// `class = EXPR`, evaluated with the variant's fields bound by name.
    Computed(Expr),
}

impl Parse for CodeSpec {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(Ident) && input.peek2(syn::parse::End) {
            let fork = input.fork();
            let ident: Ident = fork.parse()?;
            if ident == "transparent" {
                input.parse::<Ident>()?;
                return Ok(Self::Transparent);
            }
        }
        let code: Expr = input.parse()?;
        if input.is_empty() {
            return Err(syn::Error::new(
                code.span(),
                "say whether retrying can help: #[code(CODE, transient)], \
                 #[code(CODE, permanent)], #[code(CODE, configuration)] or \
                 #[code(CODE, class = EXPR)]",
            ));
        }
        input.parse::<Token![,]>()?;
        let ident: Ident = input.parse()?;
        let class = if ident == "class" {
            input.parse::<Token![=]>()?;
            ClassSpec::Computed(input.parse()?)
        } else if ident == "transient" || ident == "permanent" || ident == "configuration" {
            ClassSpec::Fixed(ident)
        } else {
            return Err(syn::Error::new(
                ident.span(),
                "unknown retry class: use transient, permanent, configuration or class = EXPR",
            ));
        };
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the retry class"));
        }
        Ok(Self::Own { code, class })
    }
}

/// `#[coded_error]` or `#[coded_error(crate = path)]`.
struct Args {
    krate: Path,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Ok(Self {
                krate: syn::parse_quote!(::composable_rust_core),
            });
        }
        input.parse::<Token![crate]>()?;
        input.parse::<Token![=]>()?;
        let krate = input.parse()?;
        Ok(Self { krate })
    }
}

pub(crate) fn expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let Args { krate } = syn::parse2(args)?;
    let mut item: ItemEnum = syn::parse2(input).map_err(|error| {
        syn::Error::new(
            error.span(),
            "#[coded_error] goes on an error enum (with #[derive(thiserror::Error)])",
        )
    })?;

    let mut code_arms = Vec::new();
    let mut class_arms = Vec::new();
    for variant in &mut item.variants {
        let spec = take_code_attribute(&mut variant.attrs, &variant.ident)?;
        let name = &variant.ident;
        match spec {
            CodeSpec::Transparent => {
                if variant.fields.len() != 1 {
                    return Err(syn::Error::new(
                        variant.span(),
                        "#[code(transparent)] needs a variant with exactly one field, \
                         whose type is a CodedError",
                    ));
                }
                let pattern = match &variant.fields {
                    Fields::Named(fields) => {
                        let field = fields.named[0].ident.as_ref().expect("named");
                        quote!(Self::#name { #field: __inner })
                    }
                    _ => quote!(Self::#name(__inner)),
                };
                code_arms.push(quote!(#pattern => #krate::error::CodedError::code(__inner),));
                class_arms.push(quote!(#pattern => #krate::error::CodedError::class(__inner),));
            }
            CodeSpec::Own { code, class } => {
                prefix_message(&mut variant.attrs, &code, &variant.ident)?;
                code_arms.push(quote!(Self::#name { .. } => #code,));
                match class {
                    ClassSpec::Fixed(ident) => {
                        let class = match ident.to_string().as_str() {
                            "transient" => quote!(Transient),
                            "permanent" => quote!(Permanent),
                            _ => quote!(Configuration),
                        };
                        class_arms
                            .push(quote!(Self::#name { .. } => #krate::error::ErrorClass::#class,));
                    }
                    ClassSpec::Computed(expr) => {
                        let pattern = binding_pattern(name, &variant.fields);
                        class_arms.push(quote!(
                            #[allow(unused_variables)]
                            #pattern => #expr,
                        ));
                    }
                }
            }
        }
    }

    let ident = &item.ident;
    // A generic error is coded when it is an error that can cross threads
    // (what `CodedError` requires), whatever bounds its parameters have.
    let mut generics = item.generics.clone();
    if !generics.params.is_empty() {
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!(Self: ::std::error::Error + ::std::marker::Send + ::std::marker::Sync + 'static));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        #item

        impl #impl_generics #krate::error::CodedError for #ident #ty_generics #where_clause {
            fn code(&self) -> #krate::error::ErrorCode {
                match self {
                    #(#code_arms)*
                }
            }

            fn class(&self) -> #krate::error::ErrorClass {
                match self {
                    #(#class_arms)*
                }
            }
        }
    })
}

/// Removes the variant's `#[code(...)]` attribute and parses it.
fn take_code_attribute(attrs: &mut Vec<Attribute>, variant: &Ident) -> syn::Result<CodeSpec> {
    let index = attrs
        .iter()
        .position(|attr| attr.path().is_ident("code"))
        .ok_or_else(|| {
            syn::Error::new(
                variant.span(),
                format!(
                    "variant `{variant}` has no #[code(...)]: give it its stable code and \
                     retry class, e.g. #[code(codes::SOMETHING, permanent)], or \
                     #[code(transparent)] for a wrapped CodedError"
                ),
            )
        })?;
    let attr = attrs.remove(index);
    attr.parse_args()
}

/// Rewrites `#[error("msg", args)]` into
/// `#[error("[{__code}] msg", args, __code = CODE)]`.
fn prefix_message(attrs: &mut [Attribute], code: &Expr, variant: &Ident) -> syn::Result<()> {
    let attr = attrs
        .iter_mut()
        .find(|attr| attr.path().is_ident("error"))
        .ok_or_else(|| {
            syn::Error::new(
                variant.span(),
                format!("variant `{variant}` has a #[code] but no #[error(\"...\")] message"),
            )
        })?;
    let Meta::List(list) = &attr.meta else {
        return Err(syn::Error::new(
            attr.span(),
            "expected #[error(\"message\", args...)]",
        ));
    };
    let message: ErrorMessage = syn::parse2(list.tokens.clone())?;
    let text = LitStr::new(
        &format!("[{{__code}}] {}", message.format.value()),
        message.format.span(),
    );
    let rest = message.rest.iter();
    let tokens = quote!(#text, #(#rest,)* __code = #code);
    attr.meta = syn::parse_quote!(error(#tokens));
    Ok(())
}

/// The tokens of an `#[error(...)]` attribute: the format string and the
/// arguments after it.
struct ErrorMessage {
    format: LitStr,
    rest: Punctuated<Expr, Token![,]>,
}

impl Parse for ErrorMessage {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let format: LitStr = input.parse().map_err(|error| {
            syn::Error::new(
                error.span(),
                "a coded variant needs a message: #[error(\"what happened; what to do\")] \
                 (#[error(transparent)] needs #[code(transparent)])",
            )
        })?;
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        }
        let rest = Punctuated::parse_terminated(input)?;
        Ok(Self { format, rest })
    }
}

/// `Self::V { a, b }`, `Self::V(_0, _1)` or `Self::V`, binding every field.
fn binding_pattern(name: &Ident, fields: &Fields) -> TokenStream {
    match fields {
        Fields::Named(named) => {
            let names = named.named.iter().map(|field| &field.ident);
            quote!(Self::#name { #(#names),* })
        }
        Fields::Unnamed(unnamed) => {
            let names = (0..unnamed.unnamed.len())
                .map(|index| format_ident!("_{}", index, span = Span::call_site()));
            quote!(Self::#name( #(#names),* ))
        }
        Fields::Unit => quote!(Self::#name),
    }
}
