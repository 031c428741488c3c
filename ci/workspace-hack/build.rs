//! Empty: cargo applies a package's `[build-dependencies]` (which cargo
//! hakari fills, to unify the features of build scripts' and proc-macros'
//! dependencies too) only to a package with a build script.
fn main() {}
