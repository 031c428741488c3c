//! Names: what `composable new` accepts as a project name, what
//! `composable add` accepts as a type name, and the other spellings the
//! generated code needs (module, kebab-case kind).

use heck::{ToKebabCase, ToSnakeCase};

use super::ScaffoldError;

/// Rust's keywords (strict and reserved, 2024 edition): not usable as a
/// module or crate name.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Crate names that would shadow a crate every project uses.
const RESERVED_CRATES: &[&str] = &[
    "core",
    "std",
    "alloc",
    "proc_macro",
    "test",
    "composable_rust",
];

/// A project name and its crate name (`my-service`, `my_service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName {
    /// As given: the package and directory name.
    pub name: String,
    /// The crate name: `-` replaced by `_`.
    pub crate_name: String,
}

/// Checks a project name: ASCII letters, digits, `-` and `_`, starting with
/// a letter, at most 64 characters, and not a keyword or a reserved crate.
pub fn project_name(name: &str) -> Result<ProjectName, ScaffoldError> {
    const EXPECTED: &str =
        "use ASCII letters, digits, `-` and `_`, starting with a letter, e.g. `order-service`";
    let invalid = |reason: &str| ScaffoldError::InvalidName {
        name: name.to_owned(),
        what: "project",
        reason: reason.to_owned(),
        expected: EXPECTED,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > 64 {
        return Err(invalid("it is longer than 64 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(invalid("it does not start with a letter"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(invalid(&format!("it contains {bad:?}")));
    }
    let crate_name = name.replace('-', "_");
    if KEYWORDS.contains(&crate_name.as_str()) {
        return Err(invalid("it is a Rust keyword"));
    }
    if RESERVED_CRATES.contains(&crate_name.as_str()) {
        return Err(invalid("it would shadow a crate of that name"));
    }
    Ok(ProjectName {
        name: name.to_owned(),
        crate_name,
    })
}

/// A type name for `composable add` and its other spellings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemName {
    /// UpperCamelCase, as given: `AccountSummary`.
    pub type_name: String,
    /// snake_case: the module and test file, `account_summary`.
    pub module: String,
    /// kebab-case: the kind of stream or read model, `account-summary`.
    pub kebab: String,
}

/// Checks a type name for `composable add`: UpperCamelCase ASCII (a capital
/// letter, then letters and digits), at most 64 characters, whose module
/// name is not a keyword.
pub fn item_name(name: &str, what: &'static str) -> Result<ItemName, ScaffoldError> {
    const EXPECTED: &str = "use an UpperCamelCase type name of ASCII letters and digits, e.g. `Account` or `AccountSummary`";
    let invalid = |reason: &str| ScaffoldError::InvalidName {
        name: name.to_owned(),
        what,
        reason: reason.to_owned(),
        expected: EXPECTED,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > 64 {
        return Err(invalid("it is longer than 64 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
        return Err(invalid("it does not start with a capital letter"));
    }
    if let Some(bad) = name.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(invalid(&format!("it contains {bad:?}")));
    }
    let module = name.to_snake_case();
    if KEYWORDS.contains(&module.as_str()) {
        return Err(invalid(&format!(
            "its module name `{module}` is a Rust keyword"
        )));
    }
    Ok(ItemName {
        type_name: name.to_owned(),
        module,
        kebab: name.to_kebab_case(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        let name = project_name("order-service").unwrap();
        assert_eq!(name.crate_name, "order_service");
        for bad in ["", "9lives", "my service", "café", "type", "std", "a/b"] {
            assert!(
                matches!(project_name(bad), Err(ScaffoldError::InvalidName { .. })),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn item_names() {
        let name = item_name("AccountSummary", "projection").unwrap();
        assert_eq!(name.module, "account_summary");
        assert_eq!(name.kebab, "account-summary");
        assert_eq!(
            item_name("Http2Gateway", "saga").unwrap().module,
            "http2_gateway"
        );
        for bad in [
            "",
            "account",
            "Account-Summary",
            "Account_Summary",
            "Type",
            "Ünicode",
        ] {
            assert!(
                matches!(
                    item_name(bad, "aggregate"),
                    Err(ScaffoldError::InvalidName { .. })
                ),
                "{bad:?} was accepted"
            );
        }
        let error = item_name("account", "aggregate").unwrap_err().to_string();
        assert!(error.starts_with("[CR-E0351]"), "{error}");
        assert!(error.contains("UpperCamelCase"), "{error}");
    }
}
