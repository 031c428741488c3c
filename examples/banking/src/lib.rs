//! The banking reference application (being built; see its README when it lands).
