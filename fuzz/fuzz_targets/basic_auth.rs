//! An Authorization: Basic header's value, as any stranger can send one to /token.
#![no_main]
use candor_core::client_auth::decode_basic;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|value: &str| {
    let _ = decode_basic(value);
});
