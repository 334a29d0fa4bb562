//! Redirect-URI matching: a requested URI against a registered one, and registration checks.
#![no_main]
use candor_core::redirect_uri::{difference, matches_registered, validate_for_registration};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (requested, registered) = input;
    let _ = matches_registered(requested, registered);
    let _ = difference(requested, registered);
    if validate_for_registration(requested).is_ok() {
        // A valid URI always matches itself.
        assert!(matches_registered(requested, requested), "{requested:?} does not match itself");
    }
});
