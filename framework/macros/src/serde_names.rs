//! The name serde writes for each variant of an enum, read from the same
//! `#[serde(...)]` attributes serde reads.
//!
//! An event's stored type name is whatever serde writes as the variant's
//! tag, so `#[derive(Event)]` must compute exactly that string: the
//! variant's name (without `r#`), or its `#[serde(rename = "...")]`, or the
//! enum's `#[serde(rename_all = "...")]` rule applied to it. The rules are
//! serde's own (`serde_derive`'s `case.rs`); the crate's behaviour tests
//! compare them with what serde really writes. Representations the event
//! codec cannot store (internally or adjacently tagged, untagged, or a
//! conversion through another type) are refused here, with the reason.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, LitStr, Token, Variant};

/// A `rename_all` rule: serde's case conversions for variant names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RenameRule {
    /// No rule: the variant's name as written.
    None,
    /// `"lowercase"`.
    Lower,
    /// `"UPPERCASE"`.
    Upper,
    /// `"PascalCase"`: variants already are.
    Pascal,
    /// `"camelCase"`.
    Camel,
    /// `"snake_case"`.
    Snake,
    /// `"SCREAMING_SNAKE_CASE"`.
    ScreamingSnake,
    /// `"kebab-case"`.
    Kebab,
    /// `"SCREAMING-KEBAB-CASE"`.
    ScreamingKebab,
}

/// The rules by the names serde accepts, in serde's order.
const RULES: &[(&str, RenameRule)] = &[
    ("lowercase", RenameRule::Lower),
    ("UPPERCASE", RenameRule::Upper),
    ("PascalCase", RenameRule::Pascal),
    ("camelCase", RenameRule::Camel),
    ("snake_case", RenameRule::Snake),
    ("SCREAMING_SNAKE_CASE", RenameRule::ScreamingSnake),
    ("kebab-case", RenameRule::Kebab),
    ("SCREAMING-KEBAB-CASE", RenameRule::ScreamingKebab),
];

impl RenameRule {
    fn from_lit(lit: &LitStr) -> syn::Result<Self> {
        let value = lit.value();
        RULES
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, rule)| *rule)
            .ok_or_else(|| {
                let names: Vec<_> = RULES.iter().map(|(name, _)| *name).collect();
                syn::Error::new(
                    lit.span(),
                    format!(
                        "unknown rename_all rule `{value}`: serde accepts {}",
                        names.join(", ")
                    ),
                )
            })
    }

    /// The name serde gives the variant `variant` under this rule
    /// (`serde_derive`'s `RenameRule::apply_to_variant`).
    pub(crate) fn apply(self, variant: &str) -> String {
        match self {
            Self::None | Self::Pascal => variant.to_owned(),
            Self::Lower => variant.to_ascii_lowercase(),
            Self::Upper => variant.to_ascii_uppercase(),
            Self::Camel => variant[..1].to_ascii_lowercase() + &variant[1..],
            Self::Snake => {
                let mut snake = String::new();
                for (index, ch) in variant.char_indices() {
                    if index > 0 && ch.is_uppercase() {
                        snake.push('_');
                    }
                    snake.push(ch.to_ascii_lowercase());
                }
                snake
            }
            Self::ScreamingSnake => Self::Snake.apply(variant).to_ascii_uppercase(),
            Self::Kebab => Self::Snake.apply(variant).replace('_', "-"),
            Self::ScreamingKebab => Self::ScreamingSnake.apply(variant).replace('_', "-"),
        }
    }
}

/// What the enum's `#[serde(...)]` attributes say about variant names.
pub(crate) struct EnumNaming {
    rule: RenameRule,
}

/// The serialized name of one variant, and where it came from (for errors).
pub(crate) struct VariantName {
    /// The name serde writes.
    pub(crate) name: String,
    /// The `rename` literal, or the variant's identifier.
    pub(crate) span: Span,
    /// `#[serde(skip)]` or `skip_serializing`: never written.
    pub(crate) skipped: bool,
}

/// Why a representation cannot be stored, and what to do instead.
const EXTERNALLY_TAGGED: &str = "the event store keeps an event as (type name, payload), \
     which is serde's default enum representation (externally tagged); remove this \
     attribute and let the type name come from the variant";

/// Reads the enum-level `#[serde(...)]` attributes.
pub(crate) fn enum_naming(attrs: &[Attribute]) -> syn::Result<EnumNaming> {
    let mut rule = RenameRule::None;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename_all") {
                rule = one_name(&meta, "rename_all")?
                    .map_or(Ok(RenameRule::None), |lit| RenameRule::from_lit(&lit))?;
                Ok(())
            } else if meta.path.is_ident("tag") || meta.path.is_ident("content") {
                Err(meta.error(format!(
                    "#[derive(Event)] cannot store an internally or adjacently tagged \
                     enum: {EXTERNALLY_TAGGED}"
                )))
            } else if meta.path.is_ident("untagged") {
                Err(meta.error(format!(
                    "#[derive(Event)] cannot store an untagged enum (it has no type \
                     name): {EXTERNALLY_TAGGED}"
                )))
            } else if ["into", "from", "try_from", "remote"]
                .iter()
                .any(|key| meta.path.is_ident(key))
            {
                Err(meta.error(format!(
                    "#[derive(Event)] cannot see the names of an enum serialized \
                     through another type: {EXTERNALLY_TAGGED}"
                )))
            } else {
                skip_value(&meta)
            }
        })?;
    }
    Ok(EnumNaming { rule })
}

/// Reads a variant's `#[serde(...)]` attributes and computes its name.
pub(crate) fn variant_name(naming: &EnumNaming, variant: &Variant) -> syn::Result<VariantName> {
    let ident = variant.ident.to_string();
    let ident = ident.strip_prefix("r#").unwrap_or(&ident);
    let mut name = VariantName {
        name: naming.rule.apply(ident),
        span: variant.ident.span(),
        skipped: false,
    };
    for attr in variant
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("serde"))
    {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                if let Some(lit) = one_name(&meta, "rename")? {
                    name.name = lit.value();
                    name.span = lit.span();
                }
                Ok(())
            } else if meta.path.is_ident("skip") || meta.path.is_ident("skip_serializing") {
                name.skipped = true;
                Ok(())
            } else if meta.path.is_ident("untagged") {
                Err(meta.error(format!(
                    "an untagged variant has no type name to store: {EXTERNALLY_TAGGED}"
                )))
            } else if meta.path.is_ident("skip_deserializing") {
                Err(meta.error(
                    "this variant would be stored but could never be loaded back: remove \
                     skip_deserializing, or #[serde(skip)] the variant so it is never stored",
                ))
            } else {
                skip_value(&meta)
            }
        })?;
    }
    Ok(name)
}

/// `key = "name"`, or `key(serialize = "a", deserialize = "b")` where the
/// two must agree: an event is read back by the name it was written with.
/// `None` for a form serde also ignores (`key(deserialize = "b")` alone
/// leaves the written name as it was).
fn one_name(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<Option<LitStr>> {
    if meta.input.peek(Token![=]) {
        return Ok(Some(meta.value()?.parse()?));
    }
    let mut serialize: Option<LitStr> = None;
    let mut deserialize: Option<LitStr> = None;
    meta.parse_nested_meta(|inner| {
        let lit: LitStr = inner.value()?.parse()?;
        if inner.path.is_ident("serialize") {
            serialize = Some(lit);
        } else if inner.path.is_ident("deserialize") {
            deserialize = Some(lit);
        } else {
            return Err(inner.error("expected `serialize` or `deserialize`"));
        }
        Ok(())
    })?;
    match (serialize, deserialize) {
        (Some(written), Some(read)) if written.value() != read.value() => Err(syn::Error::new(
            read.span(),
            format!(
                "an event is read back by the name it was written with, but this {key} \
                 writes \"{}\" and reads \"{}\": use one name, #[serde({key} = \"...\")]",
                written.value(),
                read.value()
            ),
        )),
        (Some(written), _) => Ok(Some(written)),
        (None, Some(read)) => Err(syn::Error::new(
            read.span(),
            format!(
                "an event is read back by the name it was written with, but this {key} \
                 only changes the name it reads: use one name, #[serde({key} = \"...\")]"
            ),
        )),
        (None, None) => Ok(None),
    }
}

/// Consumes the value of a serde key this module does not interpret
/// (`= expr` or `(...)`), leaving its checking to serde.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::RenameRule;

    #[test]
    fn rules_match_serdes_examples() {
        // The examples of serde_derive's own case.rs tests.
        let cases = [
            (
                "Outcome", "outcome", "OUTCOME", "outcome", "outcome", "OUTCOME", "outcome",
                "OUTCOME",
            ),
            (
                "VeryTasty",
                "verytasty",
                "VERYTASTY",
                "veryTasty",
                "very_tasty",
                "VERY_TASTY",
                "very-tasty",
                "VERY-TASTY",
            ),
            ("A", "a", "A", "a", "a", "A", "a", "A"),
            ("Z42", "z42", "Z42", "z42", "z42", "Z42", "z42", "Z42"),
        ];
        for (original, lower, upper, camel, snake, screaming, kebab, screaming_kebab) in cases {
            assert_eq!(RenameRule::None.apply(original), original);
            assert_eq!(RenameRule::Lower.apply(original), lower);
            assert_eq!(RenameRule::Upper.apply(original), upper);
            assert_eq!(RenameRule::Pascal.apply(original), original);
            assert_eq!(RenameRule::Camel.apply(original), camel);
            assert_eq!(RenameRule::Snake.apply(original), snake);
            assert_eq!(RenameRule::ScreamingSnake.apply(original), screaming);
            assert_eq!(RenameRule::Kebab.apply(original), kebab);
            assert_eq!(RenameRule::ScreamingKebab.apply(original), screaming_kebab);
        }
    }
}
