//! private_key_jwt (OIDC Core §9, RFC 7523): a client authenticates with an assertion signed by
//! its private key, verified with its registered public keys; each rule that fails is named, a
//! clock difference in seconds, and an assertion is used once.

use crate::helpers::*;
use candor_core::clock::Clock;
use candor_core::keys::{SigningKey, generate};
use candor_core::model::{AuthMethod, GrantType, SigningAlg};
use reqwest::StatusCode;
use serde_json::{Value, json};

const JWT_CLIENT: &str = "signed-app";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Signer {
    key: SigningKey,
}

impl Signer {
    fn new(alg: SigningAlg) -> Signer {
        Signer { key: SigningKey::parse(&generate(alg, 0).unwrap()).unwrap() }
    }

    fn assertion(&self, claims: Value) -> String {
        self.key.sign_jwt(&claims).unwrap()
    }
}

/// Registers `JWT_CLIENT` (client_credentials) with the public keys of `signers`.
async fn register(app: &TestApp, signers: &[&Signer]) {
    let mut c = client(JWT_CLIENT, AuthMethod::PrivateKeyJwt, &[], &[GrantType::ClientCredentials], None);
    c.scopes = vec!["api.read".into()];
    c.jwks = Some(json!({ "keys": signers.iter().map(|s| s.key.public_jwk()).collect::<Vec<_>>() }));
    app.store.insert_client(&c).await.unwrap();
}

fn claims(app: &TestApp, aud: &str, jti: &str) -> Value {
    let now = app.clock.now();
    json!({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": aud, "iat": now, "exp": now + 60, "jti": jti})
}

async fn with_assertion(app: &TestApp, path: &str, assertion: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)];
    form.extend_from_slice(extra);
    let (s, v, _) = app.post_form(path, &form, None).await;
    (s, v)
}

async fn client_credentials(app: &TestApp, assertion: &str) -> (StatusCode, Value) {
    with_assertion(app, "/token", assertion, &[("grant_type", "client_credentials"), ("scope", "api.read")]).await
}

#[tokio::test]
async fn a_signed_assertion_authenticates_once_with_any_of_candors_audiences() {
    let app = spawn_app().await;
    let (es, ed) = (Signer::new(SigningAlg::ES256), Signer::new(SigningAlg::EdDSA));
    let rs = Signer::new(SigningAlg::RS256);
    register(&app, &[&es, &ed, &rs]).await;
    let token_endpoint = app.url("/token");
    for (i, (signer, aud)) in [(&es, token_endpoint.as_str()), (&ed, app.base.as_str()), (&rs, token_endpoint.as_str())]
        .into_iter()
        .enumerate()
    {
        let assertion = signer.assertion(claims(&app, aud, &format!("j{i}")));
        let (status, body) = client_credentials(&app, &assertion).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert!(body["access_token"].is_string());
        // The same assertion again: refused, whatever else the request says.
        let (status, body) = client_credentials(&app, &assertion).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_reason(&body, "client_assertion_replayed", "invalid_client");
    }
    // Introspection accepts it too, with the introspection endpoint as audience.
    let access = {
        let (_, t) = client_credentials(&app, &es.assertion(claims(&app, &token_endpoint, "j-cc"))).await;
        t["access_token"].as_str().unwrap().to_string()
    };
    let assertion = es.assertion(claims(&app, &app.url("/introspect"), "j-introspect"));
    let (status, body) = with_assertion(&app, "/introspect", &assertion, &[("token", &access)]).await;
    assert_eq!((status, body["active"].clone()), (StatusCode::OK, Value::Bool(true)), "{body:#}");
}

#[tokio::test]
async fn a_skewed_clock_is_reported_in_seconds_against_the_leeway() {
    let app = spawn_app().await;
    let es = Signer::new(SigningAlg::ES256);
    register(&app, &[&es]).await;
    let now = app.clock.now();
    let aud = app.url("/token");
    // Signed by a client whose clock is 5 minutes behind: expired 4 minutes ago.
    let behind =
        json!({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": aud, "iat": now - 300, "exp": now - 240, "jti": "a"});
    let (status, body) = client_credentials(&app, &es.assertion(behind)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_reason(&body, "client_assertion_expired", "invalid_client");
    assert_eq!(body["facts"]["expired_seconds_ago"], 240, "{body:#}");
    assert_eq!(body["facts"]["leeway_seconds"], 60);
    assert!(body["error_description"].as_str().unwrap().contains("server_time"), "{body:#}");
    // 5 minutes ahead: issued in the future.
    let ahead =
        json!({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": aud, "iat": now + 300, "exp": now + 360, "jti": "b"});
    let (_, body) = client_credentials(&app, &es.assertion(ahead)).await;
    assert_reason(&body, "client_assertion_not_yet_valid", "invalid_client");
    assert_eq!(body["facts"]["seconds_in_the_future"], 300);
    // 30 s behind, within the default leeway of 60 s: accepted.
    let slight =
        json!({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": aud, "iat": now - 90, "exp": now - 30, "jti": "c"});
    assert_eq!(client_credentials(&app, &es.assertion(slight)).await.0, StatusCode::OK);
    // Valid for a year: its jti would have to be kept a year. Milliseconds for seconds alike.
    for (exp, jti) in [(now + 365 * 86_400, "d"), (now * 1000, "e")] {
        let long = json!({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": aud, "iat": now, "exp": exp, "jti": jti});
        let (status, body) = client_credentials(&app, &es.assertion(long)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_reason(&body, "client_assertion_lifetime_too_long", "invalid_client");
        assert_eq!(body["facts"]["max_seconds"], 3600, "{body:#}");
    }
    // An hour ahead is still accepted.
    let hour = json!({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": aud, "iat": now, "exp": now + 3600, "jti": "f"});
    assert_eq!(client_credentials(&app, &es.assertion(hour)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn each_broken_rule_is_named() {
    let app = spawn_app().await;
    let (es, stranger) = (Signer::new(SigningAlg::ES256), Signer::new(SigningAlg::ES256));
    register(&app, &[&es]).await;
    let aud = app.url("/token");
    let refused = |body: &Value, reason: &str| assert_reason(body, reason, "invalid_client");
    // Signed by a key that is not registered.
    let (_, body) = client_credentials(&app, &stranger.assertion(claims(&app, &aud, "k1"))).await;
    refused(&body, "client_assertion_signature_invalid");
    assert_eq!(body["facts"]["defect"], "key_not_found");
    // The refusal is recorded under the client the assertion claims to be, for its timeline.
    let recorded = app.store.audit(body["trace_id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(recorded.client_id.as_deref(), Some(JWT_CLIENT));
    // Minted for another server.
    let (_, body) =
        client_credentials(&app, &es.assertion(claims(&app, "https://other.example.com/token", "k2"))).await;
    refused(&body, "client_assertion_audience_wrong");
    // iss is not the client.
    let mut c = claims(&app, &aud, "k3");
    c["iss"] = json!("https://signed-app.example.com");
    refused(&client_credentials(&app, &es.assertion(c)).await.1, "client_assertion_issuer_mismatch");
    // No jti.
    let mut c = claims(&app, &aud, "k4");
    c.as_object_mut().unwrap().remove("jti");
    refused(&client_credentials(&app, &es.assertion(c)).await.1, "client_assertion_malformed");
    // The grant type of RFC 7523 §2.1 where the client assertion type belongs.
    let assertion = es.assertion(claims(&app, &aud, "k5"));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("client_assertion", assertion.as_str()),
    ];
    refused(&app.post_form("/token", &form, None).await.1, "client_assertion_type_unsupported");
    // An assertion and a secret together.
    let (_, body, _) = app
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ],
            Some(SERVICE),
        )
        .await;
    assert_reason(&body, "multiple_auth_methods", "invalid_request");
    // A client registered for a secret cannot switch to an assertion, nor the reverse.
    let mut c = claims(&app, &aud, "k6");
    c["iss"] = json!(SERVICE);
    c["sub"] = json!(SERVICE);
    let (_, body) = client_credentials(&app, &es.assertion(c)).await;
    assert_reason(&body, "auth_method_not_allowed", "invalid_client");
    let (_, body, _) =
        app.post_form("/token", &[("grant_type", "client_credentials"), ("client_id", JWT_CLIENT)], None).await;
    assert_reason(&body, "auth_method_not_allowed", "invalid_client");
}

#[tokio::test]
async fn discovery_lists_private_key_jwt_and_its_algorithms() {
    let app = spawn_app().await;
    let d: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert!(d["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("private_key_jwt")));
    assert_eq!(d["token_endpoint_auth_signing_alg_values_supported"], json!(["RS256", "ES256", "EdDSA"]));
}

/// 32 bytes, base64url: the sealing key of the client_secret_jwt tests.
const SEALING_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA";
const HMAC_CLIENT: &str = "hmac-app";

fn hmac_claims(app: &TestApp, jti: &str) -> Value {
    let now = app.clock.now();
    json!({"iss": HMAC_CLIENT, "sub": HMAC_CLIENT, "aud": app.url("/token"), "iat": now, "exp": now + 60, "jti": jti})
}

/// Registers `HMAC_CLIENT` for client_secret_jwt with a secret sealed under `SEALING_KEY`.
async fn register_hmac(app: &TestApp) -> String {
    let secret = candor_core::tokens::Secret::generate(candor_core::tokens::SecretKind::ClientSecret).unwrap();
    let mut c = client(HMAC_CLIENT, AuthMethod::ClientSecretJwt, &[], &[GrantType::ClientCredentials], Some(&secret));
    c.scopes = vec!["api.read".into()];
    let key = candor_core::sealed::SealingKey::parse(SEALING_KEY).unwrap();
    c.secret_sealed = Some(key.seal(HMAC_CLIENT, &secret.value).unwrap());
    app.store.insert_client(&c).await.unwrap();
    secret.value
}

#[tokio::test]
async fn client_secret_jwt_is_an_hmac_with_the_sealed_secret_offered_only_with_a_sealing_key() {
    let app =
        spawn_app_with(|s| s.client_secret_key = Some(SEALING_KEY.into()), candor_server::Disclosure::Detailed).await;
    let secret = register_hmac(&app).await;
    let doc: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert!(doc["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("client_secret_jwt")));
    assert!(doc["token_endpoint_auth_signing_alg_values_supported"].as_array().unwrap().contains(&json!("HS256")));
    for (i, alg) in ["HS256", "HS384", "HS512"].iter().enumerate() {
        let (status, body) =
            client_credentials(&app, &hmac_jwt(alg, &secret, &hmac_claims(&app, &format!("h{i}")))).await;
        assert_eq!(status, StatusCode::OK, "{alg}: {body:#}");
    }
    // Replayed, keyed with another secret, signed with a private key, or the secret sent as such.
    let (_, body) = client_credentials(&app, &hmac_jwt("HS256", &secret, &hmac_claims(&app, "h0"))).await;
    assert_reason(&body, "client_assertion_replayed", "invalid_client");
    let (_, body) = client_credentials(&app, &hmac_jwt("HS256", "cds_guess", &hmac_claims(&app, "h9"))).await;
    assert_reason(&body, "client_assertion_signature_invalid", "invalid_client");
    assert_eq!(body["facts"]["defect"], "signature_mismatch");
    let es = Signer::new(SigningAlg::ES256);
    let (_, body) = client_credentials(&app, &es.assertion(hmac_claims(&app, "h10"))).await;
    assert_eq!(body["facts"]["defect"], "alg_not_hmac", "{body:#}");
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(HMAC_CLIENT, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_reason(&r.json().await.unwrap(), "auth_method_not_allowed", "invalid_client");
    // An HMAC from a private_key_jwt client is no signature at all.
    let rs = Signer::new(SigningAlg::RS256);
    register(&app, &[&rs]).await;
    let mut claims = claims(&app, &app.url("/token"), "h11");
    claims["iss"] = json!(JWT_CLIENT);
    let (_, body) = client_credentials(&app, &hmac_jwt("HS256", &rs.key.public_jwk()["n"].to_string(), &claims)).await;
    assert_reason(&body, "client_assertion_signature_invalid", "invalid_client");
    assert_eq!(body["facts"]["defect"], "alg_unsupported");

    // The same store on a server without the key: not offered, and the client's assertion
    // cannot be checked, which is said.
    let keyless = spawn_app().await;
    let doc: Value =
        reqwest::get(keyless.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert!(!doc["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("client_secret_jwt")));
    register_hmac(&keyless).await;
    let (status, body) = client_credentials(&keyless, &hmac_jwt("HS256", &secret, &hmac_claims(&keyless, "k1"))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_reason(&body, "client_secret_unreadable", "server_error");
}
