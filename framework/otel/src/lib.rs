//! OpenTelemetry for Composable Rust.
#![deny(missing_docs)]
