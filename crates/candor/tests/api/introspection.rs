//! Token introspection (RFC 7662): active tokens with their claims for confidential clients,
//! `{"active": false}` for every dead token with the reason kept under the trace id (and sent only
//! under detailed disclosure), and refusals for callers that may not introspect.

use crate::helpers::*;
use candor_server::Disclosure;
use reqwest::StatusCode;
use serde_json::Value;

async fn introspect(app: &TestApp, token: &str, as_client: Option<&str>) -> (StatusCode, Value) {
    let (status, body, headers) = app.post_form("/introspect", &[("token", token)], as_client).await;
    if status == StatusCode::OK {
        assert_eq!(headers["cache-control"], "no-store", "RFC 7662 answers must not be cached");
    }
    (status, body)
}

/// Asserts an inactive answer and returns the reason recorded under its trace id.
async fn inactive(app: &TestApp, token: &str, as_client: &str) -> String {
    let (status, body) = introspect(app, token, Some(as_client)).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["active"], false, "{body:#}");
    let trace = body["trace_id"].as_str().unwrap();
    let recorded = app.store.audit(trace).await.unwrap().unwrap();
    assert_eq!(recorded.endpoint, "introspect");
    let reason = recorded.reason.unwrap();
    // Detailed disclosure (the test default, as in `candor dev`) also sends it.
    assert_eq!(body["reason"], reason.as_str(), "{body:#}");
    reason
}

#[tokio::test]
async fn an_active_access_token_introspects_with_its_claims_for_any_confidential_client() {
    let app = spawn_app().await;
    let t = app.tokens("openid profile offline_access").await;
    let access = t["access_token"].as_str().unwrap();
    for caller in [WEB, SERVICE] {
        let (status, body) = introspect(&app, access, Some(caller)).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert_eq!(body["active"], true);
        assert_eq!(body["scope"], t["scope"], "the scope as the token response gave it");
        assert_eq!(body["client_id"], WEB);
        assert_eq!(body["sub"], app.user_id.as_str());
        assert_eq!(body["username"], USER);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["token_use"], "access_token");
        assert_eq!(body["iss"], app.base.as_str());
        assert_eq!(body["exp"].as_i64().unwrap() - body["iat"].as_i64().unwrap(), 3600);
    }
    // The refresh token: for its own client only.
    let refresh = t["refresh_token"].as_str().unwrap();
    let (_, body) = introspect(&app, refresh, Some(WEB)).await;
    assert_eq!(body["active"], true, "{body:#}");
    assert_eq!(body["token_use"], "refresh_token");
    assert!(body.get("token_type").is_none());
    assert_eq!(inactive(&app, refresh, SERVICE).await, "refresh_token_issued_to_other_client");
    // A client-credentials token's subject is its client; it has no user.
    let (_, cc, _) = app.token(&[("grant_type", "client_credentials"), ("scope", "api.read")], Some(SERVICE)).await;
    let (_, body) = introspect(&app, cc["access_token"].as_str().unwrap(), Some(WEB)).await;
    assert_eq!((body["active"].clone(), body["sub"].clone()), (Value::Bool(true), Value::from(SERVICE)));
    assert!(body.get("username").is_none());
}

#[tokio::test]
async fn every_dead_token_is_inactive_and_the_trace_says_why() {
    let app = spawn_app().await;
    let t = app.tokens("openid offline_access").await;
    let (access, refresh) = (t["access_token"].as_str().unwrap(), t["refresh_token"].as_str().unwrap());
    // A token the client's callback parser damaged, and one no one issued.
    assert_eq!(inactive(&app, &format!("{access}#state=x"), WEB).await, "access_token_malformed");
    assert_eq!(inactive(&app, "not-a-token", WEB).await, "access_token_malformed");
    assert_eq!(
        inactive(&app, "not-a-token", WEB).await,
        "access_token_malformed",
        "without a hint a value of no kind is judged as an access token"
    );
    let (_, body, _) =
        app.post_form("/introspect", &[("token", "x"), ("token_type_hint", "refresh_token")], Some(WEB)).await;
    assert_eq!(body["reason"], "refresh_token_malformed");
    // Rotated: the old refresh token is inactive (and introspecting it revokes nothing).
    let (_, rotated, _) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some(WEB)).await;
    assert_eq!(inactive(&app, refresh, WEB).await, "refresh_token_rotated");
    let newest = rotated["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&app, newest, Some(WEB)).await.1["active"], true);
    // A disabled user's tokens are inactive while the user is.
    app.store.set_disabled(&app.user_id, true).await.unwrap();
    assert_eq!(inactive(&app, access, SERVICE).await, "user_disabled");
    app.store.set_disabled(&app.user_id, false).await.unwrap();
    assert_eq!(introspect(&app, access, Some(SERVICE)).await.1["active"], true);
    // Expired.
    app.clock.advance(3601);
    assert_eq!(inactive(&app, access, SERVICE).await, "access_token_expired");
}

#[tokio::test]
async fn under_standard_disclosure_an_inactive_answer_says_nothing_about_the_token() {
    let app = spawn_app_with(|_| {}, Disclosure::Standard).await;
    let (status, body) = introspect(&app, "not-a-token", Some(SERVICE)).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["active", "trace_id"], "{body:#}");
    // The reason is still recorded for the operator and for the caller's /explain.
    let recorded = app.store.audit(body["trace_id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(recorded.reason.as_deref(), Some("access_token_malformed"));
}

#[tokio::test]
async fn only_authenticated_confidential_clients_may_introspect_and_the_request_must_be_right() {
    let app = spawn_app().await;
    let access = app.tokens("openid").await["access_token"].as_str().unwrap().to_string();
    let (status, body) = introspect(&app, &access, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_reason(&body, "client_authentication_missing", "invalid_client");
    // A public client's id alone would let anyone test tokens (RFC 7662 §2.1).
    let (status, body, _) = app.post_form("/introspect", &[("token", &access), ("client_id", SPA)], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_reason(&body, "introspection_client_not_confidential", "invalid_client");
    let (status, body, _) = app.post_form("/introspect", &[("token_type_hint", "access_token")], Some(SERVICE)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "parameter_missing", "invalid_request");
    let (status, body, _) =
        app.post_form("/introspect", &[("token", &access), ("token_type_hint", "id_token")], Some(SERVICE)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "token_type_unsupported", "unsupported_token_type");
    let (status, body, _) = app.post_form("/introspect", &[("token", &access), ("token", "x")], Some(SERVICE)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "parameter_duplicated", "invalid_request");
    // A wrong hint of the two kinds is not obeyed: Candor tells the kinds apart.
    let (_, body, _) =
        app.post_form("/introspect", &[("token", &access), ("token_type_hint", "refresh_token")], Some(SERVICE)).await;
    assert_eq!(body["active"], true);
}
