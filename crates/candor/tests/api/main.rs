//! Integration tests: the real server on a random port against a temporary SQLite store,
//! driven over HTTP through the real login and consent forms. `tests/api_postgres/` runs the
//! same files against PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

mod helpers;

mod authorization_code;
mod authorize;
mod bench;
mod cases;
mod cli;
mod client_credentials;
mod device;
mod discovery_and_keys;
mod disk_full;
mod doctor;
mod dpop;
mod explain;
mod faults;
mod flow;
mod hardening;
mod introspection;
mod logout;
mod openidconnect_rp;
mod par;
mod private_key_jwt;
mod reasons;
mod refresh;
mod registration;
mod resources;
mod revocation;
mod served;
mod throttling;
mod userinfo;
