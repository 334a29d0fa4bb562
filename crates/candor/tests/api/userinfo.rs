//! UserInfo with bearer tokens (RFC 6750 errors).

use crate::helpers::*;

#[tokio::test]
async fn userinfo_returns_the_claims_of_the_granted_scopes() {
    let app = spawn_app().await;
    let body = app.tokens("openid profile").await;
    let r = app.userinfo(body["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    let claims: serde_json::Value = r.json().await.unwrap();
    assert_eq!(claims["sub"], app.user_id);
    assert_eq!(claims["preferred_username"], USER);
    assert!(claims.get("email").is_none(), "email was not granted");
    let body = app.tokens("openid email").await;
    let claims: serde_json::Value = app.userinfo(body["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
}

#[tokio::test]
async fn userinfo_accepts_post_with_the_token_in_the_body() {
    let app = spawn_app().await;
    let body = app.tokens("openid").await;
    let r = reqwest::Client::new()
        .post(app.url("/userinfo"))
        .form(&[("access_token", body["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn missing_and_bad_tokens_get_rfc_6750_challenges() {
    let app = spawn_app().await;
    let r = reqwest::Client::new().get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], r#"Bearer realm="candor""#);
    let fake = candor_core::tokens::Secret::generate(candor_core::tokens::SecretKind::AccessToken).unwrap().value;
    let r = app.userinfo(&fake).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="invalid_token""#));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "access_token_unknown");
}

#[tokio::test]
async fn an_expired_access_token_is_refused() {
    let app = spawn_app().await;
    let body = app.tokens("openid").await;
    app.clock.advance(3601);
    let r = app.userinfo(body["access_token"].as_str().unwrap()).await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "access_token_expired");
}

#[tokio::test]
async fn a_token_without_openid_is_insufficient_scope() {
    let app = spawn_app().await;
    let (_, body, _) = app.token(&[("grant_type", "client_credentials")], Some(SERVICE)).await;
    let r = app.userinfo(body["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 403);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
}

#[tokio::test]
async fn a_disabled_users_token_is_invalid_token_401() {
    let app = spawn_app().await;
    let body = app.tokens("openid").await;
    app.store.set_disabled(&app.user_id, true).await.unwrap();
    let r = app.userinfo(body["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="invalid_token""#));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["reason"], "user_disabled");
}
