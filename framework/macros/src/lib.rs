//! # composable-rust-macros
//!
//! Procedural macros of Composable Rust. Applications use them through the
//! `composable-rust` facade; the framework's own crates use them directly.
//!
//! - [`macro@coded_error`]: gives every variant of a `thiserror` error enum
//!   its stable code and its retry class in one attribute, next to its
//!   message.
//! - [`macro@Event`]: an event enum's type names (exactly as serde writes
//!   them) and schema versions, checked at compile time.
//! - [`macro@Action`]: which actions are commands and which are events, and
//!   the conversions that embed a child feature's actions in a parent's.
//!
//! The derives name the framework as `::composable_rust` (the facade); a
//! crate that depends on `composable-rust-core` directly adds
//! `#[event(crate = composable_rust_core)]` / `#[action(crate = ...)]`.
#![deny(missing_docs)]

mod action;
mod coded_error;
mod event;
#[cfg(test)]
mod expansion_tests;
mod krate;
mod serde_names;

use proc_macro::TokenStream;

/// Attaches a stable [`ErrorCode`] and an [`ErrorClass`] to every variant
/// of a `thiserror` error enum, in one place: the variant's
/// `#[code(...)]` attribute.
///
/// # Examples
///
/// ```
/// use composable_rust::error::{BackendError, CodedError, ErrorClass, coded_error};
///
/// mod codes {
///     use composable_rust::error::ErrorCode;
///     pub const THING_MISSING: ErrorCode = ErrorCode::new("CR-E0997", "thing missing");
/// }
///
/// // In the framework's own crates `#[coded_error]` is enough; elsewhere,
/// // say where the core is (here: through the facade).
/// #[coded_error(crate = composable_rust::core)]
/// #[derive(Debug, thiserror::Error)]
/// pub enum ThingError {
///     /// The thing is missing.
///     #[code(codes::THING_MISSING, permanent)]
///     #[error("thing `{name}` does not exist; create it first")]
///     Missing { name: String },
///     /// The backend failed; its code and class are the backend's.
///     #[code(transparent)]
///     #[error(transparent)]
///     Backend(BackendError),
/// }
///
/// let error = ThingError::Missing { name: "lamp".into() };
/// assert_eq!(error.to_string(), "[CR-E0997] thing `lamp` does not exist; create it first");
/// assert_eq!(error.code().as_str(), "CR-E0997");
/// assert_eq!(error.class(), ErrorClass::Permanent);
/// ```
///
/// For each variant the macro
/// - prefixes its `#[error("...")]` message with `[CODE] `, so `Display`
///   always starts with the code that [`CodedError::code`] returns;
/// - generates `CodedError::code` and `CodedError::class`.
///
/// The class is `transient` (retrying can help), `permanent` (this
/// event, row or key will never succeed) or `configuration` (stop and fix
/// the setup), or `class = EXPR`, where `EXPR` may use the variant's
/// fields by name (tuple fields as `_0`, `_1`, ...). `#[code(transparent)]`
/// takes code and class from the variant's only field, which must be a
/// `CodedError` itself.
///
/// [`ErrorCode`]: https://docs.rs/composable-rust-core/latest/composable_rust_core/error/struct.ErrorCode.html
/// [`ErrorClass`]: https://docs.rs/composable-rust-core/latest/composable_rust_core/error/enum.ErrorClass.html
/// [`CodedError::code`]: https://docs.rs/composable-rust-core/latest/composable_rust_core/error/trait.CodedError.html
/// [`CodedError::class`]: https://docs.rs/composable-rust-core/latest/composable_rust_core/error/trait.CodedError.html
#[proc_macro_attribute]
pub fn coded_error(args: TokenStream, input: TokenStream) -> TokenStream {
    coded_error::expand(args.into(), input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Implements `Event` for a serde enum of events: its type names and
/// their schema versions, from the enum itself.
///
/// # Examples
///
/// ```
/// use composable_rust::prelude::*;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize, Event)]
/// enum AccountEvent {
///     Opened { owner: String },
///     #[event(version = 2)]
///     MoneyDeposited { amount_cents: i64 },
/// }
///
/// assert_eq!(AccountEvent::event_types(), ["Opened", "MoneyDeposited"]);
/// assert_eq!(AccountEvent::schema_version("MoneyDeposited"), 2);
/// ```
///
/// - A variant's **type name** is the name serde writes for it: the
///   variant's name, its `#[serde(rename = "...")]`, or the enum's
///   `#[serde(rename_all = "...")]` applied to it. There is no second
///   place to name it (`#[event(rename)]` is an error that says so).
/// - `#[event(version = N)]` sets a variant's current **schema version**
///   (1 without it; 0 is an error).
/// - `Event::event_types()` lists the names in declaration order
///   (`#[serde(skip)]`ped variants are never stored and are left out).
///
/// Compile errors: two variants with one type name (each would load as
/// the first), a version of 0, and serde representations the event store
/// cannot keep (`tag`, `content`, `untagged`, `into`/`from`, a
/// `skip_deserializing` variant that could be written but never read back),
/// each pointing
/// at the offending attribute and saying what to write instead.
///
/// The generated `impl` names `::composable_rust::Event`; in a crate that
/// depends on `composable-rust-core` directly, add
/// `#[event(crate = composable_rust_core)]` to the enum.
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    event::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Implements `Action` from `#[command]` and `#[event]` markers, and the
/// conversions of `#[child]` variants that embed a child feature's actions.
///
/// # Examples
///
/// ```
/// use composable_rust::prelude::*;
///
/// #[derive(Debug, Clone, PartialEq, Action)]
/// enum AccountsAction {
///     #[command]
///     Deposit { amount: u64 },
/// }
///
/// #[derive(Debug, Clone, PartialEq, Action)]
/// enum BankAction {
///     #[child]
///     Accounts(AccountsAction),
///     #[command]
///     CloseDay,
///     #[event]
///     DayClosed,
/// }
///
/// assert!(BankAction::CloseDay.is_command());
/// assert!(BankAction::DayClosed.is_event());
/// let wrapped = BankAction::from(AccountsAction::Deposit { amount: 5 });
/// assert_eq!(AccountsAction::try_from(wrapped), Ok(AccountsAction::Deposit { amount: 5 }));
/// assert_eq!(AccountsAction::try_from(BankAction::CloseDay), Err(BankAction::CloseDay));
/// ```
///
/// - `is_command()` is true for `#[command]` variants, `is_event()` for
///   `#[event]` variants; a variant may have neither, never both.
/// - A `#[child]` variant `V(ChildAction)` gets
///   `From<ChildAction> for BankAction` and
///   `TryFrom<BankAction> for ChildAction` (whose error gives the action
///   back), which is what `composable_rust::embed` composes with. Two
///   `#[child]` variants may not wrap the same type: `From` could not know
///   which one to build.
///
/// The generated `impl` names `::composable_rust::Action`; in a crate that
/// depends on `composable-rust-core` directly, add
/// `#[action(crate = composable_rust_core)]` to the enum.
#[proc_macro_derive(Action, attributes(command, event, child, action))]
pub fn derive_action(input: TokenStream) -> TokenStream {
    action::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
