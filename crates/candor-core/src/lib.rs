//! Candor's protocol core: OAuth 2.0 and OpenID Connect rules, with no HTTP and no SQL.
//!
//! Every refusal is a [`rejection::Rejection`] naming the rule that failed and the facts behind it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod access_token;
pub mod audit;
pub mod authorize;
pub mod client_assertion;
pub mod client_auth;
pub mod clock;
pub mod device;
pub mod docs;
pub mod dpop;
pub mod grant;
pub mod id_token;
pub mod introspection;
pub mod jws;
pub mod keys;
pub mod logout;
pub mod model;
pub mod net;
pub mod par;
pub mod params;
pub mod password;
pub mod pkce;
pub mod redirect_uri;
pub mod registration;
pub mod rejection;
pub mod resource;
pub mod scope;
pub mod sealed;
pub mod settings;
pub mod store;
pub mod tokens;
pub mod userinfo;

pub use rejection::{Reason, Rejection};
