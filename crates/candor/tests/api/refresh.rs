//! Refresh tokens: rotation, reuse detection, scope, lifetime.

use crate::helpers::*;
use reqwest::StatusCode;

async fn refresh(app: &TestApp, token: &str, scope: Option<&str>) -> (StatusCode, serde_json::Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let (s, v, _) = app.token(&form, Some(WEB)).await;
    (s, v)
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_is_dead() {
    let app = spawn_app().await;
    let first = app.tokens("openid offline_access").await;
    let old = first["refresh_token"].as_str().unwrap();
    let (s, second) = refresh(&app, old, None).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    let new = second["refresh_token"].as_str().unwrap();
    assert_ne!(new, old);
    assert!(second["id_token"].is_string(), "OIDC Core §12.2: an ID token on refresh");
    let (s, third) = refresh(&app, new, None).await;
    assert_eq!(s, StatusCode::OK, "{third}");
}

#[tokio::test]
async fn replaying_a_rotated_refresh_token_revokes_the_family() {
    let app = spawn_app().await;
    let first = app.tokens("openid offline_access").await;
    let old = first["refresh_token"].as_str().unwrap().to_string();
    let (_, second) = refresh(&app, &old, None).await;
    let current = second["refresh_token"].as_str().unwrap();
    let (s, body) = refresh(&app, &old, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_reason(&body, "refresh_token_reused", "invalid_grant");
    assert_eq!(body["facts"]["family_revoked"], true);
    assert!(body["facts"]["rotated_by_trace"].as_str().unwrap().len() >= 16);
    let (_, body) = refresh(&app, current, None).await;
    assert_reason(&body, "refresh_token_revoked", "invalid_grant");
    assert_eq!(app.userinfo(second["access_token"].as_str().unwrap()).await.status(), 401);
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_rotate_exactly_once() {
    let app = std::sync::Arc::new(spawn_app().await);
    let first = app.tokens("openid offline_access").await;
    let token = first["refresh_token"].as_str().unwrap().to_string();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move { refresh(&app, &token, None).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        let (s, body) = t.await.unwrap();
        if s == StatusCode::OK {
            wins += 1;
        } else {
            assert!(
                ["refresh_token_reused", "refresh_token_revoked"].contains(&body["reason"].as_str().unwrap()),
                "{body}"
            );
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn refresh_may_narrow_the_scope_but_never_broaden_it() {
    let app = spawn_app().await;
    let first = app.tokens("openid profile offline_access").await;
    let (s, narrowed) = refresh(&app, first["refresh_token"].as_str().unwrap(), Some("openid")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(narrowed["scope"], "openid");
    // The new refresh token keeps the original grant (RFC 6749 §6): profile may come back.
    let (s, back) = refresh(&app, narrowed["refresh_token"].as_str().unwrap(), Some("openid profile")).await;
    assert_eq!(s, StatusCode::OK, "{back}");
    let (s, body) = refresh(&app, back["refresh_token"].as_str().unwrap(), Some("openid email")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_reason(&body, "scope_broadened", "invalid_scope");
    assert_eq!(body["facts"]["added"], "email");
}

#[tokio::test]
async fn a_refresh_token_family_has_an_absolute_lifetime() {
    let app = spawn_app_with(|s| s.refresh_token_lifetime = 1000, candor_server::Disclosure::Detailed).await;
    let first = app.tokens("openid offline_access").await;
    app.clock.advance(600);
    let (s, second) = refresh(&app, first["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(s, StatusCode::OK);
    app.clock.advance(600);
    let (_, body) = refresh(&app, second["refresh_token"].as_str().unwrap(), None).await;
    assert_reason(&body, "refresh_token_expired", "invalid_grant");
}

#[tokio::test]
async fn no_refresh_token_without_offline_access() {
    let app = spawn_app().await;
    let body = app.tokens("openid profile").await;
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn a_refresh_token_of_another_client_is_refused() {
    let app = spawn_app().await;
    let first = app.tokens("openid offline_access").await;
    let (_, body, _) = app
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())],
            Some(ES),
        )
        .await;
    assert_reason(&body, "refresh_token_issued_to_other_client", "invalid_grant");
}

#[tokio::test]
async fn a_refresh_token_sent_as_a_code_is_named() {
    let app = spawn_app().await;
    let first = app.tokens("openid offline_access").await;
    let (_, body) = app.exchange(first["refresh_token"].as_str().unwrap(), &pkce().verifier).await;
    assert_reason(&body, "code_malformed", "invalid_grant");
    assert_eq!(body["facts"]["defect"], "wrong_kind");
}

#[tokio::test]
async fn a_client_may_be_configured_to_always_receive_refresh_tokens() {
    let app = spawn_app().await;
    let mut c = app.store.client(WEB).await.unwrap().unwrap();
    c.id = "always".into();
    c.always_issue_refresh_token = true;
    let secret = candor_core::tokens::Secret::generate(candor_core::tokens::SecretKind::ClientSecret).unwrap();
    c.secret_hash = Some(secret.hash.clone());
    app.store.insert_client(&c).await.unwrap();
    let (cb, p) = app.code_for("always", WEB_REDIRECT, "openid").await;
    let r = app.exchange_as("always", &secret.value, &cb.code(), &p.verifier).await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["refresh_token"].is_string(), "{body}");
}

#[tokio::test]
async fn within_the_grace_interval_a_rotated_token_may_be_used_once_more_without_revoking_the_family() {
    let app = spawn_app_with(|s| s.refresh_reuse_grace = 10, candor_server::Disclosure::Detailed).await;
    let first = app.tokens("openid offline_access").await;
    let old = first["refresh_token"].as_str().unwrap();
    let (s, a) = refresh(&app, old, None).await;
    assert_eq!(s, StatusCode::OK);
    app.clock.advance(5);
    let (s, b) = refresh(&app, old, None).await;
    assert_eq!(s, StatusCode::OK, "a benign race within the grace interval succeeds: {b}");
    for t in [&a, &b] {
        assert_eq!(refresh(&app, t["refresh_token"].as_str().unwrap(), None).await.0, StatusCode::OK);
    }
    app.clock.advance(10);
    let (_, body) = refresh(&app, old, None).await;
    assert_reason(&body, "refresh_token_reused", "invalid_grant");
}

#[tokio::test]
async fn withdrawn_consent_ends_the_grant_with_consent_revoked() {
    let app = spawn_app().await;
    let tokens = app.tokens("openid offline_access").await;
    let now = candor_core::clock::Clock::now(&app.clock);
    assert!(app.store.revoke_consent(&app.user_id, WEB, now).await.unwrap());
    assert_eq!(app.userinfo(tokens["access_token"].as_str().unwrap()).await.status(), 401);
    let (_, body) = refresh(&app, tokens["refresh_token"].as_str().unwrap(), None).await;
    assert_reason(&body, "consent_revoked", "invalid_grant");
    assert_eq!(body["facts"]["tokens_revoked_now"], 1);
    let (_, body) = refresh(&app, tokens["refresh_token"].as_str().unwrap(), None).await;
    assert_reason(&body, "refresh_token_revoked", "invalid_grant");
}
