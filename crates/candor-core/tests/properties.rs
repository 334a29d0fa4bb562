//! Property tests of the parsers a stranger's input reaches: whatever the bytes, they answer with
//! a value or a refusal and never panic, and what a conforming client encodes comes back intact.
//! The stable-toolchain stand-in for fuzzing (cargo-fuzz needs nightly); `PROPTEST_CASES=100000`
//! runs a longer search.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use candor_core::client_auth::decode_basic;
use candor_core::device::UserCode;
use candor_core::params::{Encoding, Params};
use candor_core::pkce::{CodeChallenge, CodeVerifier, s256};
use candor_core::redirect_uri::{difference, matches_registered, validate_for_registration};
use candor_core::scope::Scope;
use proptest::prelude::*;

fn form(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

proptest! {
    #[test]
    fn form_and_query_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for encoding in [Encoding::Form, Encoding::Query] {
            if let Ok(p) = Params::from_urlencoded(&bytes, encoding) {
                let _ = p.first_duplicate();
                for (k, _) in p.pairs().to_vec() {
                    let _ = p.get(&k);
                    let _ = p.get_text(&k);
                }
            }
        }
    }

    #[test]
    fn json_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), text in "\\PC{0,200}") {
        for input in [&bytes[..], text.as_bytes()] {
            if let Ok(p) = Params::from_json(input) {
                let _ = p.first_duplicate();
                let _ = p.get("grant_type");
            }
        }
    }

    #[test]
    fn encoded_parameters_come_back_as_sent(pairs in proptest::collection::vec(("[a-z_]{1,12}", "\\PC{0,40}"), 0..8)) {
        let p = Params::from_urlencoded(form(&pairs).as_bytes(), Encoding::Form).unwrap();
        prop_assert_eq!(p.pairs(), &pairs[..]);
        let json = serde_json::Value::Object(pairs.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect());
        let p = Params::from_json(json.to_string().as_bytes()).unwrap();
        for (k, v) in p.pairs() {
            prop_assert_eq!(json[k].as_str(), Some(v.as_str()));
        }
        // A value that `get` returns is exactly what was sent, and free of control characters.
        for (k, v) in &pairs {
            if pairs.iter().filter(|(k2, _)| k2 == k).count() > 1 {
                continue;
            }
            if let Ok(Some(got)) = p.get(k) {
                prop_assert_eq!(got, v.as_str());
                prop_assert!(!got.chars().any(char::is_control));
            }
        }
    }

    #[test]
    fn basic_credentials_never_panic_and_round_trip(raw in "\\PC{0,120}", id in "\\PC{0,40}", secret in "\\PC{0,60}") {
        let _ = decode_basic(&raw);
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let header = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(&id), enc(&secret)));
        prop_assert_eq!(decode_basic(&header).unwrap(), (id, secret));
    }

    #[test]
    fn redirect_uri_matching_never_panics_and_a_valid_uri_matches_itself(a in "\\PC{0,80}", b in "\\PC{0,80}",
        path in "[a-zA-Z0-9/._~-]{0,30}", port in 1u16..) {
        let _ = matches_registered(&a, &b);
        let _ = difference(&a, &b);
        let _ = validate_for_registration(&a);
        let uri = format!("https://app.example.com/{path}");
        if validate_for_registration(&uri).is_ok() {
            let longer = format!("{uri}x");
            prop_assert!(matches_registered(&uri, &uri));
            prop_assert!(!matches_registered(&longer, &uri));
        }
        // Loopback literals accept any port (RFC 8252 §7.3); other hosts do not.
        let loopback = format!("http://127.0.0.1:{port}/cb");
        let elsewhere = format!("https://app.example.com:{port}/cb");
        prop_assert!(matches_registered(&loopback, "http://127.0.0.1/cb"));
        prop_assert!(!matches_registered(&elsewhere, "https://app.example.com/cb") || port == 443);
    }

    #[test]
    fn pkce_accepts_only_its_own_verifier(raw in "\\PC{0,200}", verifier in "[A-Za-z0-9._~-]{43,128}",
        other in "[A-Za-z0-9._~-]{43,128}") {
        let _ = CodeVerifier::parse(&raw);
        let _ = CodeChallenge::parse(&raw, Some("S256"), false);
        let _ = Scope::parse(&raw);
        let challenge = CodeChallenge::parse(&s256(&verifier), Some("S256"), false).unwrap();
        prop_assert!(challenge.is_satisfied_by(&CodeVerifier::parse(&verifier).unwrap()));
        prop_assert_eq!(challenge.is_satisfied_by(&CodeVerifier::parse(&other).unwrap()), other == verifier);
    }

    #[test]
    fn user_codes_never_panic_and_read_back_however_they_are_typed(raw in "\\PC{0,60}",
        code in "[BCDFGHJKLMNPQRSTVWXZ]{8}", lower in any::<bool>(), sep in "[ -]{0,3}") {
        if let Ok(c) = UserCode::parse(&raw) {
            prop_assert_eq!(UserCode::parse(&c.display()).unwrap(), c);
        }
        let typed = format!("{}{sep}{}", &code[..4], &code[4..]);
        let typed = if lower { typed.to_lowercase() } else { typed };
        let read = UserCode::parse(&typed).unwrap();
        prop_assert_eq!(read.display(), format!("{}-{}", &code[..4], &code[4..]));
    }
}
