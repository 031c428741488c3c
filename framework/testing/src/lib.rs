//! Testing (work in progress).
