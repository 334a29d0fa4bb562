//! Pushed authorization requests (RFC 9126): the request is validated when pushed, /authorize
//! takes it once through its request_uri, and a client registered for PAR cannot do without it.

use crate::helpers::*;
use candor_core::model::{AuthMethod, GrantType};
use reqwest::StatusCode;
use serde_json::Value;

/// Pushes `params` as the client `basic` (its secret in HTTP Basic).
async fn push(app: &TestApp, params: &[(&str, &str)], basic: Option<&str>) -> (StatusCode, Value) {
    let (status, body, headers) = app.post_form("/par", params, basic).await;
    if status == StatusCode::CREATED {
        assert_eq!(headers["cache-control"], "no-store");
    }
    (status, body)
}

/// GET /authorize with a request_uri: the page of a refusal, with its status.
async fn authorize_page(app: &TestApp, client_id: &str, request_uri: &str) -> (StatusCode, String) {
    let r = app.authorize(&browser(), &[("client_id", client_id), ("request_uri", request_uri)]).await;
    let status = r.status();
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn a_pushed_request_runs_the_whole_flow_once() {
    let app = spawn_app().await;
    let p = pkce();
    let (status, pushed) = push(&app, &auth_params(WEB, WEB_REDIRECT, "openid offline_access", &p), Some(WEB)).await;
    assert_eq!(status, StatusCode::CREATED, "{pushed:#}");
    let uri = pushed["request_uri"].as_str().unwrap();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:cdq_"), "{uri}");
    assert_eq!(pushed["expires_in"], 90);
    // Only client_id and request_uri travel through the browser; the rest comes from the push.
    let cb = app.authorize_through(&[("client_id", WEB), ("request_uri", uri), ("scope", "ignored")]).await;
    assert_eq!(cb.params["state"], "state-123");
    let (status, tokens) = app.exchange(&cb.code(), &p.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens:#}");
    assert!(tokens["refresh_token"].is_string(), "the pushed scope, not the one beside the request_uri");
    // Used once.
    let (status, page) = authorize_page(&app, WEB, uri).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("request_uri_used"), "{page}");
}

#[tokio::test]
async fn a_request_uri_is_refused_when_unknown_expired_or_sent_by_another_client() {
    let app = spawn_app().await;
    let p = pkce();
    let fresh = || async { push(&app, &auth_params(WEB, WEB_REDIRECT, "openid", &p), Some(WEB)).await.1 };
    let uri = fresh().await["request_uri"].as_str().unwrap().to_string();
    let (_, page) = authorize_page(&app, POST_CLIENT, &uri).await;
    assert!(page.contains("request_uri_client_mismatch"), "{page}");
    let uri = fresh().await["request_uri"].as_str().unwrap().to_string();
    app.clock.advance(91);
    let (_, page) = authorize_page(&app, WEB, &uri).await;
    assert!(page.contains("request_uri_expired"), "{page}");
    let (_, page) = authorize_page(&app, WEB, "urn:ietf:params:oauth:request_uri:somewhere-else").await;
    assert!(page.contains("request_uri_unknown"), "{page}");
    let (_, page) = authorize_page(&app, WEB, "https://app.example.com/request.jwt").await;
    assert!(page.contains("request_uri_unknown"), "{page}");
}

#[tokio::test]
async fn a_bad_push_is_answered_directly_to_the_client() {
    let app = spawn_app().await;
    let p = pkce();
    let mut params = auth_params(WEB, "https://evil.example/cb", "openid", &p);
    let (status, body) = push(&app, &params, Some(WEB)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "redirect_uri_not_registered", "invalid_request");
    params = auth_params(WEB, WEB_REDIRECT, "openid", &p);
    let (status, body) = push(&app, &params, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a confidential client authenticates: {body:#}");
    params.push(("request_uri", "urn:ietf:params:oauth:request_uri:x"));
    let (_, body) = push(&app, &params, Some(WEB)).await;
    assert_reason(&body, "parameter_invalid", "invalid_request");
}

#[tokio::test]
async fn a_client_registered_for_par_cannot_send_its_request_through_the_browser() {
    let app = spawn_app().await;
    let mut c = client("par-only", AuthMethod::None, &[SPA_REDIRECT], &[GrantType::AuthorizationCode], None);
    c.require_par = true;
    app.store.insert_client(&c).await.unwrap();
    let p = pkce();
    let params = auth_params("par-only", SPA_REDIRECT, "openid", &p);
    let r = app.authorize(&browser(), &params).await;
    let to = location(&r);
    assert!(
        to.starts_with(SPA_REDIRECT) && to.contains("error=invalid_request") && to.contains("par_required"),
        "{to}"
    );
    // Pushed (a public client pushes with its client_id), it goes through.
    let (status, pushed) = push(&app, &params, None).await;
    assert_eq!(status, StatusCode::CREATED, "{pushed:#}");
    let cb = app
        .authorize_through(&[("client_id", "par-only"), ("request_uri", pushed["request_uri"].as_str().unwrap())])
        .await;
    assert!(cb.params.contains_key("code"), "{:?}", cb.params);
    let d: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(d["pushed_authorization_request_endpoint"], app.url("/par"));
}
