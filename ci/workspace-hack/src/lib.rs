//! The Composable Rust repository's workspace-hack: no code, only
//! dependencies, so that building one package of the workspace compiles
//! its dependencies with the same features as the whole workspace's build
//! (see this crate's `Cargo.toml`).
