//! Client-side tools: `doctor` finds the client's mistake in an authorization-code exchange
//! from the requests alone, against any provider.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo))]

pub mod bench;
pub mod doctor;
pub mod flow;
pub mod jwt;
pub mod request;
