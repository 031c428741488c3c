//! The sagas: processes that follow events and send commands, one module
//! each. `composable add saga NAME` adds one here; `App::work` (src/app.rs)
//! shows how a saga is run, with a dispatcher that carries out its commands.

pub mod fulfillment;
pub mod shipping_desk;
