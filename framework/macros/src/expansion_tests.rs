//! Expansion tests: what each derive generates for typical input, as
//! pretty-printed snapshots (`src/snapshots/`), so a change to the
//! generated code shows up in review as a diff of readable Rust.
//!
//! After an intended change to the generated code, rewrite them with
//! `INSTA_UPDATE=always cargo test -p composable-rust-macros --lib` and
//! review the diff. The behaviour of the generated code is tested in
//! `tests/`, and the compile errors in `tests/ui/`.

use proc_macro2::TokenStream;
use quote::quote;

/// The expansion as formatted Rust, or the error message.
fn pretty(result: syn::Result<TokenStream>) -> String {
    match result {
        Ok(tokens) => {
            let file = syn::parse2::<syn::File>(tokens).expect("the expansion is valid Rust");
            prettyplease::unparse(&file)
        }
        Err(error) => format!("error: {error}"),
    }
}

#[test]
fn event_with_versions_and_renames() {
    let input = quote! {
        #[derive(Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum AccountEvent {
            Opened { owner: String },
            #[event(version = 2)]
            MoneyDeposited { amount_cents: i64 },
            #[serde(rename = "account.closed")]
            #[event(version = 3)]
            Closed,
        }
    };
    insta::assert_snapshot!(pretty(crate::event::expand(input)));
}

#[test]
fn event_without_versions_keeps_the_default_schema_version() {
    let input = quote! {
        #[event(crate = composable_rust_core)]
        enum Tick<T> where T: Clone {
            Ticked(T),
            #[serde(skip)]
            Internal,
        }
    };
    insta::assert_snapshot!(pretty(crate::event::expand(input)));
}

#[test]
fn event_version_one_is_written_like_no_version() {
    let explicit = quote! {
        enum E { #[event(version = 1)] A }
    };
    let implicit = quote! {
        enum E { A }
    };
    assert_eq!(
        pretty(crate::event::expand(explicit)),
        pretty(crate::event::expand(implicit))
    );
}

#[test]
fn event_reports_every_duplicate_name_at_once() {
    let input = quote! {
        #[serde(rename_all = "lowercase")]
        enum E { Opened, OPENED, #[serde(rename = "opened")] Again }
    };
    let error = crate::event::expand(input).unwrap_err();
    let messages: Vec<String> = error.into_iter().map(|e| e.to_string()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].starts_with("variants `Opened` and `OPENED`"));
    assert!(messages[1].starts_with("variants `Opened` and `Again`"));
}

#[test]
fn action_with_markers_and_children() {
    let input = quote! {
        enum BankAction {
            #[child]
            Accounts(AccountsAction),
            #[child]
            Notifications(notifications::NotificationsAction),
            #[command]
            CloseDay { at: u64 },
            #[event]
            DayClosed,
            Tick,
        }
    };
    insta::assert_snapshot!(pretty(crate::action::expand(input)));
}

#[test]
fn action_without_markers_is_neither() {
    let input = quote! {
        #[action(crate = composable_rust_core)]
        enum Ping<T> { Pong(T) }
    };
    insta::assert_snapshot!(pretty(crate::action::expand(input)));
}
