//! Listing 25-1: modeling recipes. Each module is one recipe of the
//! cookbook's Modeling Recipes, with the tests that prove it.

pub mod crud;
pub mod fat_thin;
pub mod validation;
pub mod versioning;
