//! What a developer pastes into `candor doctor` / `candor flow`: a callback URL, a token request
//! (curl, raw HTTP, key=value), or a JWT.
#![no_main]
use candor_client::jwt;
use candor_client::request::{UrlParts, parse_token_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = UrlParts::parse(text);
    let _ = parse_token_request(text);
    let _ = jwt::decode(text);
});
