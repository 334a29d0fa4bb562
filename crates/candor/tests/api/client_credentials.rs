//! Client credentials and client authentication.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn client_credentials_issue_an_access_token_without_refresh_or_id_token() {
    let app = spawn_app().await;
    let (s, body, headers) =
        app.token(&[("grant_type", "client_credentials"), ("scope", "api.read")], Some(SERVICE)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["scope"], "api.read");
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
}

#[tokio::test]
async fn user_scopes_are_refused_for_client_credentials() {
    let app = spawn_app().await;
    let (_, body, _) = app.token(&[("grant_type", "client_credentials"), ("scope", "openid")], Some(SERVICE)).await;
    assert_reason(&body, "scope_not_allowed", "invalid_scope");
}

#[tokio::test]
async fn a_wrong_secret_is_401_with_www_authenticate() {
    let app = spawn_app().await;
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(SERVICE, Some("cds_wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_reason(&body, "client_secret_wrong", "invalid_client");
    assert!(!body.to_string().contains("cds_wrong"));
}

#[tokio::test]
async fn an_unknown_client_is_invalid_client() {
    let app = spawn_app().await;
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("ghost", Some("x"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_reason(&body, "client_unknown_at_token", "invalid_client");
}

#[tokio::test]
async fn the_registered_auth_method_is_enforced() {
    let app = spawn_app().await;
    let (s, body, _) = app
        .token(
            &[("grant_type", "client_credentials"), ("client_id", SERVICE), ("client_secret", &app.secret(SERVICE))],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_reason(&body, "auth_method_not_allowed", "invalid_client");
    assert_eq!(body["facts"]["used"], "client_secret_post");
    assert_eq!(body["facts"]["registered"], "client_secret_basic");
}

#[tokio::test]
async fn two_authentication_methods_in_one_request_are_refused() {
    let app = spawn_app().await;
    let (s, body, _) = app
        .token(&[("grant_type", "client_credentials"), ("client_secret", &app.secret(SERVICE))], Some(SERVICE))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_reason(&body, "multiple_auth_methods", "invalid_request");
}

#[tokio::test]
async fn client_secret_post_authenticates() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(POST_CLIENT, WEB_REDIRECT, "openid").await;
    let (s, body, _) = app
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", POST_CLIENT),
                ("client_secret", &app.secret(POST_CLIENT)),
                ("code", &cb.code()),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", &p.verifier),
            ],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_public_client_cannot_use_client_credentials() {
    let app = spawn_app().await;
    let (_, body, _) = app.token(&[("grant_type", "client_credentials"), ("client_id", SPA)], None).await;
    assert_reason(&body, "grant_type_not_allowed_for_client", "unauthorized_client");
}

#[tokio::test]
async fn no_client_at_all_is_invalid_client() {
    let app = spawn_app().await;
    let (s, body, _) = app.token(&[("grant_type", "client_credentials")], None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_reason(&body, "client_authentication_missing", "invalid_client");
}

#[tokio::test]
async fn swapped_basic_credentials_never_echo_store_or_log_the_secret() {
    let app = spawn_app().await;
    let secret = app.secret(SERVICE);
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&secret, Some(SERVICE))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_reason(&body, "client_unknown_at_token", "invalid_client");
    assert!(body["facts"]["problem"].as_str().unwrap().contains("swapped"));
    assert!(!body.to_string().contains(&secret));
    let e = app.explain(body["trace_id"].as_str().unwrap()).await;
    assert!(!e.to_string().contains(&secret));
    for row in app.sql_texts("SELECT client_id, facts FROM audit", &[]).await {
        let (client, facts) = (row[0].clone(), row[1].clone().unwrap());
        assert!(!client.unwrap_or_default().contains(&secret) && !facts.contains(&secret));
    }
}
