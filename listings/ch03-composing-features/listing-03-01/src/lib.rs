//! Listing 3-1: two features of a bank app, each written and tested on its
//! own: [`accounts`] and [`notifications`]. Neither knows the other, nor
//! the app that embeds them (listing 3-2).

pub mod accounts;
pub mod notifications;
