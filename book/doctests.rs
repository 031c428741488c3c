#![doc = r#"
Doctests for *The Composable Rust Book*.

This crate has no code of its own. Its build script (`book/build.rs`) reads
every chapter under `book/src`, expands mdBook's include directives the way
mdBook does, and generates one empty module per chapter whose documentation
*is* the chapter:

```text
#[doc = include_str!(concat!(env!("OUT_DIR"), "/book/src/introduction.md"))]
pub mod introduction {}
```

So `cargo test -p composable-rust-book --doc` compiles and runs every inline
Rust fence exactly as a reader of the book sees it, hidden `# ` lines included.
`should_panic`, `compile_fail` and `no_run` fences behave as rustdoc defines
them; an `ignore` fence needs a recorded reason (`book-checker check` enforces
it).

Rust fences that only include a file from `listings/` or `examples/` are *not*
tested here: those files belong to workspace crates that `cargo test` builds
and tests on their own, so the build script marks such fences `text` before
rustdoc sees them.

Snippets may use the crates this crate depends on, as a reader's project
would: `composable_rust` (with the `testing` feature), `tokio`, `serde` and
`serde_json`.

A failing fence is reported as
`…/out/book/src/<chapter>.md.rs - <module> (line N)`: `<chapter>` is the
chapter's path under `book/src`, the module name is that path with punctuation
turned into `_`, and `N` is the line in the expanded chapter, which sits next
to that file (`…/out/book/src/<chapter>.md`). `N` is also the line in the
chapter itself unless a multi-line include above the fence was expanded.
"#]
// Chapters are mdBook Markdown, not rustdoc Markdown: links between chapters
// are relative file links and prose is formatted for mdBook, so rustdoc's and
// clippy's documentation-style lints do not apply to them.
#![allow(rustdoc::all)]
#![allow(clippy::all, clippy::pedantic, clippy::nursery)]

include!(concat!(env!("OUT_DIR"), "/chapters.rs"));
