//! Observability: the framework's own metrics, scraped by Prometheus and
//! drawn by the Grafana dashboard in `deploy/grafana/composable-rust.json`.
//!
//! - [`shop`]: the application: a Store that places orders, a fulfilment
//!   saga, a projection of totals;
//! - [`workload`]: [`Shop`] connects it to PostgreSQL (events, read model)
//!   and Redis (the read model's cache), with the in-memory bus, runs a
//!   workload that makes every component report, and keeps a trickle of
//!   orders going;
//! - [`exporter`]: installs the Prometheus recorder and serves `/metrics`
//!   with plain tokio.
//!
//! `tests/dashboard.rs` starts a real Prometheus that scrapes this, and
//! checks that every query of every panel of the dashboard returns data.

pub mod exporter;
pub mod shop;
pub mod workload;

pub use exporter::{install_recorder, serve};
pub use workload::{Error, Outcome, Settings, Shop};
