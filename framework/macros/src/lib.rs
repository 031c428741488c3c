//! # composable-rust-macros
//!
//! Procedural macros of Composable Rust. Applications use them through the
//! `composable-rust` facade; the framework's own crates use them directly.
//!
//! - [`macro@coded_error`]: gives every variant of a `thiserror` error enum
//!   its stable code and its retry class in one attribute, next to its
//!   message.
#![deny(missing_docs)]

mod coded_error;

use proc_macro::TokenStream;

/// Attaches a stable [`ErrorCode`] and an [`ErrorClass`] to every variant
/// of a `thiserror` error enum, in one place: the variant's
/// `#[code(...)]` attribute.
///
/// ```ignore
/// #[coded_error]
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
