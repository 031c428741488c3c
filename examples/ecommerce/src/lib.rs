//! The ecommerce reference application (being built; see its README when it lands).
