//! Core (work in progress).
