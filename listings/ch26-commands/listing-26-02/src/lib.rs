//! Listing 26-2: workflow recipes. A process manager that turns an order's
//! event into a command on the stock, and a trip-booking saga that
//! compensates and keeps its state in its own events.

pub mod process_manager;
pub mod trip;
