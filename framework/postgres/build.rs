//! Rebuilds the crate when a migration is added or changed, so the
//! migrations embedded by `sqlx::migrate!` are never stale.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
