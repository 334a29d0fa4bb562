//! Dynamic client registration (RFC 7591) and client configuration (RFC 7592) over HTTP.

use crate::helpers::*;
use candor_core::settings::Settings;
use candor_server::Disclosure;
use reqwest::StatusCode;
use serde_json::{Value, json};

const INITIAL_TOKEN: &str = "initial-access-token-for-tests-0123456789";

async fn open_registration() -> TestApp {
    spawn_app_with(
        |s: &mut Settings| {
            s.registration.enabled = true;
        },
        Disclosure::Detailed,
    )
    .await
}

async fn send(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let text = r.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }, headers)
}

async fn register(app: &TestApp, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let (status, body, headers) = send(reqwest::Method::POST, &app.url("/register"), token, Some(body)).await;
    if status.is_success() {
        assert_eq!(headers["cache-control"], "no-store");
    }
    (status, body)
}

/// A client secret authenticates at /introspect (any confidential client may introspect).
async fn authenticates(app: &TestApp, client_id: &str, secret: &str) -> bool {
    let r = reqwest::Client::new()
        .post(app.url("/introspect"))
        .basic_auth(client_id, Some(secret))
        .form(&[("token", "cda_nothing")])
        .send()
        .await
        .unwrap();
    r.status() == StatusCode::OK
}

#[tokio::test]
async fn registration_is_off_unless_enabled_and_says_so() {
    let app = spawn_app().await;
    let doc: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert!(doc.get("registration_endpoint").is_none());
    let (status, body) = register(&app, None, &json!({"redirect_uris": [WEB_REDIRECT]})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_reason(&body, "registration_disabled", "invalid_request");
    let (status, body, _) = send(reqwest::Method::GET, &app.url("/register/web"), Some("x"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn a_registered_client_signs_users_in_and_manages_its_own_registration() {
    let app = open_registration().await;
    let doc: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(doc["registration_endpoint"], app.url("/register"));
    let metadata = json!({
        "client_name": "Registered app",
        "redirect_uris": [WEB_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid offline_access",
        "post_logout_redirect_uris": ["https://app.example.com/bye"],
        "logo_uri": "https://app.example.com/logo.png",
    });
    let (status, reg) = register(&app, None, &metadata).await;
    assert_eq!(status, StatusCode::CREATED, "{reg:#}");
    let id = reg["client_id"].as_str().unwrap().to_string();
    let secret = reg["client_secret"].as_str().unwrap().to_string();
    let token = reg["registration_access_token"].as_str().unwrap().to_string();
    let config = reg["registration_client_uri"].as_str().unwrap().to_string();
    assert!(secret.starts_with("cds_") && token.starts_with("cdm_"), "{reg:#}");
    assert_eq!(config, app.url(&format!("/register/{id}")));
    assert_eq!(reg["client_secret_expires_at"], 0);
    assert_eq!(reg["response_types"], json!(["code"]));
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_basic");
    assert!(reg.get("logo_uri").is_none(), "not registered, so not answered");
    let stored = app.store.client(&id).await.unwrap().unwrap();
    assert!(stored.require_pkce && stored.registration_token_hash.is_some());
    assert_ne!(stored.registration_token_hash.as_deref(), Some(token.as_str()), "only the hash is stored");

    // The pages say who chose its name.
    let b = browser();
    let r = app.authorize(&b, &auth_params(&id, WEB_REDIRECT, "openid", &pkce())).await;
    let login = b.get(app.url(&location(&r))).send().await.unwrap().text().await.unwrap();
    assert!(
        login.contains("<strong>Registered app</strong>") && login.contains("this name is not verified"),
        "{login}"
    );

    // It signs a user in like any client.
    let (cb, p) = app.code_for(&id, WEB_REDIRECT, "openid offline_access").await;
    let r = app.exchange_as(&id, &secret, &cb.code(), &p.verifier).await;
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.unwrap();

    // RFC 7592 §2.1: read, with its own token only.
    let (status, read, _) = send(reqwest::Method::GET, &config, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{read:#}");
    assert_eq!(
        (read["client_name"].as_str(), read["registration_access_token"].as_str()),
        (Some("Registered app"), Some(token.as_str()))
    );
    assert!(read.get("client_secret").is_none(), "the secret is stored as a hash only");
    for (presented, what) in [(None, "none"), (Some("cdm_wrong"), "other")] {
        let (status, body, headers) = send(reqwest::Method::GET, &config, presented, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_reason(&body, "registration_access_token_invalid", "invalid_token");
        assert_eq!(body["facts"]["presented"], what);
        assert!(headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    }
    // The same answer for a client registered by an administrator: nothing to probe.
    let (status, _, _) = send(reqwest::Method::GET, &app.url("/register/web"), Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // RFC 7592 §2.2: an update replaces the metadata, keeps the secret unless told otherwise.
    let mut update = metadata.clone();
    update["client_name"] = json!("Renamed app");
    let (status, body, _) = send(reqwest::Method::PUT, &config, Some(&token), Some(&update)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "client_metadata_invalid", "invalid_client_metadata");
    assert_eq!(body["facts"]["field"], "client_id");
    update["client_id"] = json!(id);
    update["registration_access_token"] = json!(token);
    let (_, body, _) = send(reqwest::Method::PUT, &config, Some(&token), Some(&update)).await;
    assert_eq!(body["facts"]["field"], "registration_access_token");
    update.as_object_mut().unwrap().remove("registration_access_token");
    update["client_secret"] = json!(secret);
    let (status, body, _) = send(reqwest::Method::PUT, &config, Some(&token), Some(&update)).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["client_name"], "Renamed app");
    assert!(body.get("client_secret").is_none(), "the secret stays");
    assert!(authenticates(&app, &id, &secret).await);
    assert_eq!(app.store.client(&id).await.unwrap().unwrap().created_at, stored.created_at);

    // RFC 7592 §2.3: deleted, its credentials and tokens die with it.
    let (status, body, _) = send(reqwest::Method::DELETE, &config, Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!authenticates(&app, &id, &secret).await);
    let (status, _, _) = send(reqwest::Method::GET, &config, Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, intro, _) =
        app.post_form("/introspect", &[("token", tokens["refresh_token"].as_str().unwrap())], Some(WEB)).await;
    assert_eq!(intro["active"], false);
}

#[tokio::test]
async fn switching_authentication_methods_makes_or_drops_the_secret() {
    let app = open_registration().await;
    let public = json!({"redirect_uris": [SPA_REDIRECT], "token_endpoint_auth_method": "none"});
    let (status, reg) = register(&app, None, &public).await;
    assert_eq!(status, StatusCode::CREATED, "{reg:#}");
    assert!(reg.get("client_secret").is_none() && reg.get("client_secret_expires_at").is_none());
    let id = reg["client_id"].as_str().unwrap();
    let (config, token) =
        (reg["registration_client_uri"].as_str().unwrap(), reg["registration_access_token"].as_str().unwrap());
    // To a confidential method: a secret is made now, and shown once.
    let confidential =
        json!({"client_id": id, "redirect_uris": [SPA_REDIRECT], "token_endpoint_auth_method": "client_secret_basic"});
    let (status, body, _) = send(reqwest::Method::PUT, config, Some(token), Some(&confidential)).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let secret = body["client_secret"].as_str().unwrap().to_string();
    assert!(authenticates(&app, id, &secret).await);
    // Back to none: the secret is gone.
    let back = json!({"client_id": id, "redirect_uris": [SPA_REDIRECT], "token_endpoint_auth_method": "none"});
    let (status, _, _) = send(reqwest::Method::PUT, config, Some(token), Some(&back)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!authenticates(&app, id, &secret).await);
    assert_eq!(app.store.client(id).await.unwrap().unwrap().secret_hash, None);
}

#[tokio::test]
async fn an_initial_access_token_guards_registration() {
    let app = spawn_app_with(
        |s: &mut Settings| {
            s.registration.enabled = true;
            s.registration.initial_token_hash = Some(candor_core::tokens::hash_secret(INITIAL_TOKEN));
        },
        Disclosure::Detailed,
    )
    .await;
    let metadata = json!({"redirect_uris": [WEB_REDIRECT]});
    for (presented, what) in [(None, "none"), (Some("initial-access-token-guess"), "other")] {
        let (status, body) = register(&app, presented, &metadata).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_reason(&body, "registration_token_invalid", "invalid_token");
        assert_eq!(body["facts"]["presented"], what);
    }
    assert_eq!(app.sql_count("SELECT COUNT(*) FROM clients", &[]).await, 8, "nothing registered");
    let (status, body) = register(&app, Some(INITIAL_TOKEN), &metadata).await;
    assert_eq!(status, StatusCode::CREATED, "{body:#}");
}

#[tokio::test]
async fn refused_registrations_name_the_field_and_register_nothing() {
    let app = open_registration().await;
    let cb = json!([WEB_REDIRECT]);
    let cases = [
        (
            json!({"redirect_uris": ["https://app.example.com/cb#x"]}),
            "redirect_uri_invalid",
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (json!({"client_name": "No redirect"}), "redirect_uri_invalid", "invalid_redirect_uri", "redirect_uris"),
        (
            json!({"redirect_uris": cb, "response_types": ["token"]}),
            "client_metadata_invalid",
            "invalid_client_metadata",
            "response_types",
        ),
        (
            json!({"redirect_uris": cb, "scope": "openid admin"}),
            "client_metadata_invalid",
            "invalid_client_metadata",
            "scope",
        ),
        (
            json!({"redirect_uris": cb, "backchannel_logout_uri": "http://169.254.169.254/latest"}),
            "client_metadata_invalid",
            "invalid_client_metadata",
            "backchannel_logout_uri",
        ),
        (
            json!({"redirect_uris": cb, "software_statement": "eyJhbGciOiJub25lIn0.e30."}),
            "software_statement_unsupported",
            "invalid_software_statement",
            "",
        ),
    ];
    for (body, reason, error, field) in cases {
        let (status, answer) = register(&app, None, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_reason(&answer, reason, error);
        if !field.is_empty() {
            assert_eq!(answer["facts"]["field"], field, "{answer:#}");
        }
    }
    // Not JSON, or not said to be.
    let r = reqwest::Client::new()
        .post(app.url("/register"))
        .form(&[("redirect_uris", WEB_REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_reason(&r.json().await.unwrap(), "content_type_unsupported", "invalid_request");
    let r = reqwest::Client::new()
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body("{\"redirect_uris\": [")
        .send()
        .await
        .unwrap();
    assert_reason(&r.json().await.unwrap(), "body_malformed", "invalid_request");
    assert_eq!(app.sql_count("SELECT COUNT(*) FROM clients", &[]).await, 8, "nothing registered");
}

#[tokio::test]
async fn a_client_secret_jwt_client_registers_only_where_its_secret_can_be_sealed() {
    let metadata = json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_jwt", "scope": "openid"});
    let keyless = open_registration().await;
    let (status, body) = register(&keyless, None, &metadata).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "client_metadata_invalid", "invalid_client_metadata");
    assert_eq!(body["facts"]["field"], "token_endpoint_auth_method");

    let app = spawn_app_with(
        |s: &mut Settings| {
            s.registration.enabled = true;
            s.client_secret_key = Some("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA".into());
        },
        Disclosure::Detailed,
    )
    .await;
    let (status, reg) = register(&app, None, &metadata).await;
    assert_eq!(status, StatusCode::CREATED, "{reg:#}");
    let (id, secret) = (reg["client_id"].as_str().unwrap(), reg["client_secret"].as_str().unwrap());
    let stored = app.store.client(id).await.unwrap().unwrap();
    assert!(stored.secret_sealed.as_deref().is_some_and(|s| !s.contains(secret)), "sealed, never in clear");
    // Its HS256 assertion, keyed with the secret it was given, authenticates it.
    let now = candor_core::clock::Clock::now(&app.clock);
    let claims = json!({"iss": id, "sub": id, "aud": app.base, "iat": now, "exp": now + 60, "jti": "r1"});
    let assertion = hmac_jwt("HS256", secret, &claims);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion.as_str()),
    ];
    let (status, body, _) = app.post_form("/token", &form, None).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
}

#[tokio::test]
async fn open_registration_is_throttled_per_address() {
    let app = open_registration().await;
    let metadata = json!({"grant_types": ["client_credentials"], "scope": "openid"});
    for i in 0..candor_server::registration::OPEN_REGISTRATIONS_FREE {
        let (status, body) = register(&app, None, &metadata).await;
        assert_eq!(status, StatusCode::CREATED, "registration {i}: {body:#}");
    }
    let r = reqwest::Client::new().post(app.url("/register")).json(&metadata).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let first_wait: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&first_wait), "1 s, rounded up to whole seconds: {first_wait}");
    let body: Value = r.json().await.unwrap();
    assert_reason(&body, "rate_limited", "temporarily_unavailable");
    assert!(body["facts"]["problem"].as_str().unwrap().contains("registrations from this address"), "{body:#}");
    // After the wait the next one is let through, and the wait after it is longer.
    app.clock.advance(first_wait);
    assert_eq!(register(&app, None, &metadata).await.0, StatusCode::CREATED);
    let r = reqwest::Client::new().post(app.url("/register")).json(&metadata).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let next_wait: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(next_wait > first_wait, "{next_wait} after {first_wait}");
}
