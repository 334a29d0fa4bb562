//! A DPoP proof (RFC 9449), as any stranger can send one in the DPoP header of /token or
//! /userinfo: parsed, its embedded key turned into a thumbprint and its signature checked, with
//! and without an access token to match and a nonce to carry.
#![no_main]
use candor_core::dpop::{Expect, NonceKey, thumbprint, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|proof: &str| {
    let nonce = NonceKey::derive(b"fuzz");
    for (token, nonce) in [(None, None), (Some("cda_token"), Some(&nonce))] {
        let expect = Expect {
            method: "POST",
            url: "https://id.example.com/token",
            now: 1_700_000_000,
            leeway: 60,
            access_token: token,
            nonce,
        };
        let _ = verify(proof, &expect);
    }
    if let Ok(parsed) = candor_core::jws::parse(proof) {
        let _ = thumbprint(&parsed.header["jwk"]);
    }
});
