//! Token revocation (RFC 7009): a refresh token takes its whole family with it, an access token
//! goes alone, only the owning client may revoke, and an unknown or damaged token is answered 200
//! with the reason nothing was revoked.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn revoke(app: &TestApp, token: &str, as_client: &str) -> (StatusCode, Value) {
    let (status, body, headers) = app.post_form("/revoke", &[("token", token)], Some(as_client)).await;
    if status == StatusCode::OK {
        assert_eq!(headers["cache-control"], "no-store");
    }
    (status, body)
}

async fn rotate(app: &TestApp, refresh: &str) -> (StatusCode, Value) {
    let (s, v, _) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some(WEB)).await;
    (s, v)
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_whole_family() {
    let app = spawn_app().await;
    let first = app.tokens("openid offline_access").await;
    let (_, second) = rotate(&app, first["refresh_token"].as_str().unwrap()).await;
    let newest = second["refresh_token"].as_str().unwrap();
    let (status, body) = revoke(&app, newest, WEB).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["revoked"], true);
    assert_eq!(body["token_type"], "refresh_token");
    // Two access tokens, the newest refresh token and the rotated one.
    assert_eq!(body["family_tokens_revoked"], 4, "{body:#}");
    for t in [&first, &second] {
        let r = app.userinfo(t["access_token"].as_str().unwrap()).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.json::<Value>().await.unwrap()["reason"], "access_token_revoked");
    }
    let (_, body) = rotate(&app, newest).await;
    assert_reason(&body, "refresh_token_revoked", "invalid_grant");
    // Again: nothing more to revoke, still 200.
    let (status, body) = revoke(&app, newest, WEB).await;
    assert_eq!((status, body["family_tokens_revoked"].clone()), (StatusCode::OK, Value::from(0)));
    // The grant's timeline shows the revocation.
    let explained = app.explain(body["trace_id"].as_str().unwrap()).await;
    assert!(explained.to_string().contains("revoke"), "{explained:#}");
}

#[tokio::test]
async fn revoking_an_access_token_leaves_the_refresh_token_working() {
    let app = spawn_app().await;
    let t = app.tokens("openid offline_access").await;
    let access = t["access_token"].as_str().unwrap();
    let (status, body) = revoke(&app, access, WEB).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(
        (body["token_type"].clone(), body["newly_revoked"].clone()),
        (Value::from("access_token"), Value::Bool(true))
    );
    assert_eq!(app.userinfo(access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(revoke(&app, access, WEB).await.1["newly_revoked"], false);
    let (status, body) = rotate(&app, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
}

#[tokio::test]
async fn a_client_cannot_revoke_another_client_s_token() {
    let app = spawn_app().await;
    let t = app.tokens("openid offline_access").await;
    for token in [t["access_token"].as_str().unwrap(), t["refresh_token"].as_str().unwrap()] {
        let (status, body) = revoke(&app, token, SERVICE).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
        assert_reason(&body, "token_issued_to_other_client", "unauthorized_client");
    }
    // Both still work.
    assert_eq!(app.userinfo(t["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    assert_eq!(rotate(&app, t["refresh_token"].as_str().unwrap()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_damaged_or_unknown_token_gets_200_and_the_reason_nothing_was_revoked() {
    let app = spawn_app().await;
    let t = app.tokens("openid offline_access").await;
    let access = t["access_token"].as_str().unwrap();
    // A logout handler that kept the "Bearer " prefix: RFC 7009 says 200, and the token is still live.
    let (status, body) = revoke(&app, &format!("Bearer {access}"), WEB).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["revoked"], false);
    assert_eq!(body["reason"], "access_token_malformed");
    assert!(body["error_description"].as_str().unwrap().starts_with("Nothing was revoked."), "{body:#}");
    assert_eq!(app.userinfo(access).await.status(), StatusCode::OK, "the damaged value revoked nothing");
    let recorded = app.store.audit(body["trace_id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(recorded.reason.as_deref(), Some("access_token_malformed"));
    // Unauthenticated, or with a hint no token has: errors, as for the token endpoint.
    let (status, body, _) = app.post_form("/revoke", &[("token", access)], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_reason(&body, "client_authentication_missing", "invalid_client");
    let (status, body, _) =
        app.post_form("/revoke", &[("token", access), ("token_type_hint", "id_token")], Some(WEB)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "token_type_unsupported", "unsupported_token_type");
}

#[tokio::test]
async fn discovery_advertises_both_endpoints_and_their_authentication() {
    let app = spawn_app().await;
    let d: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(d["introspection_endpoint"], app.url("/introspect"));
    assert_eq!(d["revocation_endpoint"], app.url("/revoke"));
    assert_eq!(
        d["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
    );
    assert!(d["revocation_endpoint_auth_methods_supported"].as_array().unwrap().contains(&Value::from("none")));
}
