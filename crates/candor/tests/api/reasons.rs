//! Every reason not covered by a flow test, produced over HTTP: status, error, reason, facts.
//! `every_reason_is_exercised` keeps it that way.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn post_token(
    app: &TestApp,
    content_type: &str,
    body: &'static [u8],
    basic: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().post(app.url("/token")).header("content-type", content_type).body(body);
    if let Some(id) = basic {
        req = req.basic_auth(id, Some(app.secret(id)));
    }
    let r = req.send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

fn uri_reason(cb: &Callback) -> String {
    cb.get("error_uri").unwrap().rsplit('/').next().unwrap().to_string()
}

#[test]
fn every_reason_is_exercised_by_an_integration_test() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api");
    let sources: String =
        std::fs::read_dir(dir).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    let missing: Vec<&str> =
        candor_core::Reason::ALL.iter().map(|r| r.code()).filter(|c| !sources.contains(&format!("\"{c}\""))).collect();
    assert!(missing.is_empty(), "reasons without a test: {missing:?}");
}

#[tokio::test]
async fn bearer_tokens_missing_or_altered() {
    let app = spawn_app().await;
    let r = reqwest::get(app.url("/userinfo")).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["reason"], "access_token_missing");
    let r = app.userinfo("cda_truncated").await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_reason(&body, "access_token_malformed", "invalid_token");
    assert_eq!(body["facts"]["defect"], "truncated");
}

#[tokio::test]
async fn malformed_requests_at_the_token_endpoint() {
    let app = spawn_app().await;
    let (s, body) = post_token(
        &app,
        "application/x-www-form-urlencoded",
        b"grant_type=client_credentials&scope=%FF",
        Some(SERVICE),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_reason(&body, "body_malformed", "invalid_request");
    let (_, body) = post_token(&app, "application/json", b"{\"grant_type\":", Some(SERVICE)).await;
    assert_reason(&body, "body_malformed", "invalid_request");
    let (_, body) = post_token(&app, "application/x-www-form-urlencoded", b"scope=api.read", Some(SERVICE)).await;
    assert_reason(&body, "parameter_missing", "invalid_request");
    assert_eq!(body["facts"]["parameter"], "grant_type");
    let long: &'static [u8] =
        Box::leak(format!("grant_type=client_credentials&scope={}", "a".repeat(5000)).into_bytes().into_boxed_slice());
    let (_, body) = post_token(&app, "application/x-www-form-urlencoded", long, Some(SERVICE)).await;
    assert_reason(&body, "parameter_invalid", "invalid_request");
    assert_eq!(body["facts"]["parameter"], "scope");
}

#[tokio::test]
async fn broken_client_authentication() {
    let app = spawn_app().await;
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .header("authorization", "Basic !!!not-base64")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_reason(&body, "basic_auth_malformed", "invalid_client");
    let (s, body, _) = app.token(&[("grant_type", "client_credentials"), ("client_id", ES)], Some(SERVICE)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_reason(&body, "client_id_conflict", "invalid_request");
    assert_eq!(body["facts"]["body_client_id"], ES);
}

#[tokio::test]
async fn authorization_request_rules() {
    let app = spawn_app().await;
    let b = browser();
    // Several registered URIs and none named: a page, not a redirect.
    let r = app.authorize(&b, &[("response_type", "code"), ("client_id", WEB), ("scope", "profile")]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("redirect_uri_required"));
    let base = |extra: Vec<(&'static str, &'static str)>| {
        let mut p = vec![
            ("response_type", "code"),
            ("client_id", SPA),
            ("redirect_uri", SPA_REDIRECT),
            ("scope", "openid"),
            ("state", "s"),
        ];
        p.extend(extra);
        p
    };
    let cb = Callback::parse(&location(&app.authorize(&b, &base(vec![])).await));
    assert_eq!(uri_reason(&cb), "pkce_challenge_required");
    let cb = Callback::parse(&location(
        &app.authorize(&b, &base(vec![("code_challenge", "short"), ("code_challenge_method", "S256")])).await,
    ));
    assert_eq!(cb.get("error"), Some("invalid_request"));
    assert_eq!(uri_reason(&cb), "pkce_challenge_malformed");
    let cb = Callback::parse(&location(&app.authorize(&b, &base(vec![("max_age", "-1")])).await));
    assert_eq!(uri_reason(&cb), "parameter_invalid");
}

#[tokio::test]
async fn consent_denied_is_access_denied() {
    let app = spawn_app().await;
    let b = browser();
    let p = pkce();
    let r = app.authorize(&b, &auth_params(WEB, WEB_REDIRECT, "openid", &p)).await;
    let interaction = location(&r);
    let page = b.get(app.url(&interaction)).send().await.unwrap().text().await.unwrap();
    let r = b
        .post(app.url(&format!("{interaction}/login")))
        .form(&[("csrf", csrf_of(&page).as_str()), ("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let consent = b.get(app.url(&location(&r))).send().await.unwrap().text().await.unwrap();
    let r = b
        .post(app.url(&format!("{interaction}/consent")))
        .form(&[("csrf", csrf_of(&consent).as_str()), ("decision", "deny")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cb = Callback::parse(&location(&r));
    assert_eq!(cb.get("error"), Some("access_denied"));
    assert_eq!(uri_reason(&cb), "consent_denied");
}

#[tokio::test]
async fn refresh_tokens_altered_or_never_issued() {
    let app = spawn_app().await;
    let (_, body, _) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", "cdr_cut-off")], Some(WEB)).await;
    assert_reason(&body, "refresh_token_malformed", "invalid_grant");
    assert_eq!(body["facts"]["defect"], "truncated");
    let never = candor_core::tokens::Secret::generate(candor_core::tokens::SecretKind::RefreshToken).unwrap().value;
    let (_, body, _) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", &never)], Some(WEB)).await;
    assert_reason(&body, "refresh_token_unknown", "invalid_grant");
    assert!(body["facts"]["token_fingerprint"].is_string());
}

#[tokio::test]
async fn a_removed_user_is_user_unknown() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, "openid").await;
    let now = candor_core::clock::Clock::now(&app.clock);
    app.store.remove_user(&app.user_id, now).await.unwrap();
    let (_, body) = app.exchange(&cb.code(), &p.verifier).await;
    assert_reason(&body, "user_unknown", "invalid_grant");
}

#[tokio::test]
async fn an_internal_failure_says_nothing_on_the_wire_and_everything_to_explain() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, "openid").await;
    app.sql_execute("DELETE FROM signing_keys").await;
    app.state.reload_keys().await.unwrap();
    let (s, body) = app.exchange(&cb.code(), &p.verifier).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_reason(&body, "internal_error", "server_error");
    assert!(body["facts"].as_object().unwrap().is_empty(), "internal detail stays internal: {body}");
    let e = app.explain(body["trace_id"].as_str().unwrap()).await;
    assert!(e["facts"]["keys"].as_str().unwrap().contains("RS256"), "{e}");
}
