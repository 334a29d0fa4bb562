//! A client assertion, as any stranger can send one to /token, /introspect or /revoke: read,
//! then verified against a registered key set (private_key_jwt) and a secret (client_secret_jwt).
#![no_main]
use candor_core::client_assertion::{ASSERTION_TYPE, Expect, Keys, read, verify};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|assertion: &str| {
    if let Ok((parsed, client_id)) = read(Some(ASSERTION_TYPE), assertion) {
        let jwks = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "k1",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "RSA", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"}
        ]});
        let audiences = vec!["https://id.example.com".to_string(), "https://id.example.com/token".to_string()];
        for keys in [Keys::Public(&jwks), Keys::Secret(b"cds_fuzzing-secret")] {
            let _ = verify(&parsed, &client_id, &Expect { keys, audiences: &audiences, now: 1_700_000_000, leeway: 60 });
        }
    }
});
