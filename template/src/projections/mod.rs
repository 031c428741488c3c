//! The projections: read models kept up to date from the events, one module
//! each. `composable add projection NAME` adds one here and registers it in
//! `App::catch_up_projections` (src/app.rs).

pub mod order_summaries;
