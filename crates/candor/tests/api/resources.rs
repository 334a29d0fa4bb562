//! Resource indicators (RFC 8707) and JWT access tokens (RFC 9068): a token is for one resource,
//! in the resource's format, with the scopes it understands; it works there and nowhere else,
//! and every misuse is named.

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use candor_core::model::{AuthMethod, GrantType, Resource, SigningAlg, TokenFormat};
use candor_core::tokens::{Secret, SecretKind};
use reqwest::StatusCode;
use serde_json::Value;

const ORDERS: &str = "https://orders.example/";
const BILLING: &str = "urn:example:billing";
const API_APP: &str = "api-app";

/// Registers ORDERS (JWT, ES256, 300 s, orders:*) and BILLING (opaque), and a confidential
/// client allowed both; returns its secret.
async fn setup(app: &TestApp, client_format: TokenFormat, grants: &[GrantType]) -> String {
    let orders = Resource {
        id: ORDERS.into(),
        name: "Orders API".into(),
        scopes: vec!["orders:read".into(), "orders:write".into()],
        access_token_format: TokenFormat::Jwt,
        access_token_lifetime: Some(300),
        signing_alg: SigningAlg::ES256,
        created_at: 0,
    };
    let billing = Resource {
        id: BILLING.into(),
        name: "Billing".into(),
        scopes: vec!["billing".into()],
        access_token_format: TokenFormat::Opaque,
        access_token_lifetime: None,
        ..orders.clone()
    };
    app.store.insert_resource(&orders).await.unwrap();
    app.store.insert_resource(&billing).await.unwrap();
    let secret = Secret::generate(SecretKind::ClientSecret).unwrap();
    let mut c = client(API_APP, AuthMethod::ClientSecretBasic, &[WEB_REDIRECT], grants, Some(&secret));
    c.scopes.extend(["orders:read", "orders:write", "billing"].map(String::from));
    c.resources = vec![ORDERS.into(), BILLING.into()];
    c.access_token_format = client_format;
    app.store.insert_client(&c).await.unwrap();
    secret.value
}

/// Posts `form` to `path` as API_APP.
async fn post(app: &TestApp, secret: &str, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r =
        reqwest::Client::new().post(app.url(path)).basic_auth(API_APP, Some(secret)).form(form).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

/// A code for API_APP with `scope` and the `resources`; returns it and the verifier.
async fn code(app: &TestApp, scope: &str, resources: &[&str]) -> (String, String) {
    let p = pkce();
    let mut params = auth_params(API_APP, WEB_REDIRECT, scope, &p);
    for r in resources {
        params.push(("resource", r));
    }
    let cb = app.authorize_through(&params).await;
    (cb.code(), p.verifier)
}

async fn exchange(app: &TestApp, secret: &str, code: &str, verifier: &str, resources: &[&str]) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", WEB_REDIRECT),
        ("code_verifier", verifier),
    ];
    for r in resources {
        form.push(("resource", r));
    }
    post(app, secret, "/token", &form).await
}

async fn refresh(app: &TestApp, secret: &str, token: &str, resource: Option<&str>) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    post(app, secret, "/token", &form).await
}

async fn userinfo_refusal(app: &TestApp, token: &str) -> Value {
    let r = app.userinfo(token).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert!(challenge.contains(r#"error="invalid_token""#), "{challenge}");
    body
}

#[tokio::test]
async fn a_token_for_a_resource_is_a_verifiable_jwt_for_it_alone() {
    let app = spawn_app().await;
    let secret = setup(&app, TokenFormat::Opaque, &[GrantType::AuthorizationCode, GrantType::RefreshToken]).await;
    let (code, verifier) = code(&app, "openid offline_access orders:read billing", &[ORDERS]).await;
    let (status, tokens) = exchange(&app, &secret, &code, &verifier, &[]).await;
    assert_eq!(status, StatusCode::OK, "{tokens:#}");
    // The grant names one resource, so the token is for it: its format, lifetime and scopes.
    assert_eq!(tokens["expires_in"], 300);
    assert_eq!(tokens["scope"], "orders:read", "the granted scopes the resource understands");
    assert!(tokens["id_token"].is_string());
    let at = tokens["access_token"].as_str().unwrap();
    let (header, _) = jwt_parts(at);
    assert_eq!((header["typ"].as_str(), header["alg"].as_str()), (Some("at+jwt"), Some("ES256")));
    let claims = verify_jwt(&app, at).await;
    assert_eq!(claims["iss"], app.base.as_str());
    assert_eq!(claims["aud"], ORDERS);
    assert_eq!((claims["sub"].as_str(), claims["client_id"].as_str()), (Some(app.user_id.as_str()), Some(API_APP)));
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
    assert!(claims["auth_time"].is_i64() && claims["jti"].is_string());

    // Not for Candor's userinfo: the audience is named.
    let body = userinfo_refusal(&app, at).await;
    assert_reason(&body, "access_token_audience_mismatch", "invalid_token");
    assert_eq!(body["facts"]["audience"], ORDERS);

    // Introspection and revocation know the JWT.
    let (_, intro) = post(&app, &secret, "/introspect", &[("token", at)]).await;
    assert_eq!((intro["active"].as_bool(), intro["aud"].as_str()), (Some(true), Some(ORDERS)), "{intro:#}");
    assert_eq!(intro["scope"], "orders:read");

    // A refresh may not reach beyond the grant, and the refusal leaves the refresh token working.
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&app, &secret, rt, Some(BILLING)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "resource_not_granted", "invalid_target");
    assert_eq!(body["facts"]["granted"], ORDERS);
    let (status, again) = refresh(&app, &secret, rt, None).await;
    assert_eq!(status, StatusCode::OK, "{again:#}");
    assert_eq!(jwt_parts(again["access_token"].as_str().unwrap()).1["aud"], ORDERS);

    let (status, revoked) = post(&app, &secret, "/revoke", &[("token", at)]).await;
    assert_eq!((status, revoked["revoked"].as_bool()), (StatusCode::OK, Some(true)), "{revoked:#}");
    let (_, intro) = post(&app, &secret, "/introspect", &[("token", at)]).await;
    assert_eq!((intro["active"].as_bool(), intro["reason"].as_str()), (Some(false), Some("access_token_revoked")));
}

#[tokio::test]
async fn a_grant_for_several_resources_gives_one_token_per_resource_each_in_its_format() {
    let app = spawn_app().await;
    let secret = setup(&app, TokenFormat::Opaque, &[GrantType::AuthorizationCode, GrantType::RefreshToken]).await;
    let (code, verifier) = code(&app, "openid offline_access orders:write billing", &[ORDERS, BILLING]).await;

    // Which one? Candor does not guess, and the code is not used up by asking.
    let (status, body) = exchange(&app, &secret, &code, &verifier, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "resource_ambiguous", "invalid_target");
    assert_eq!(body["facts"]["granted"], format!("{ORDERS} {BILLING}"));
    let (_, body) = exchange(&app, &secret, &code, &verifier, &[ORDERS, BILLING]).await;
    assert_reason(&body, "resource_one_per_token", "invalid_target");

    let (status, tokens) = exchange(&app, &secret, &code, &verifier, &[BILLING]).await;
    assert_eq!(status, StatusCode::OK, "{tokens:#}");
    let billing_token = tokens["access_token"].as_str().unwrap();
    assert!(billing_token.starts_with("cda_"), "BILLING's tokens are opaque");
    assert_eq!((tokens["scope"].as_str(), tokens["expires_in"].as_i64()), (Some("billing"), Some(3600)));
    let (_, intro) = post(&app, &secret, "/introspect", &[("token", billing_token)]).await;
    assert_eq!(intro["aud"], BILLING);

    let (status, orders) = refresh(&app, &secret, tokens["refresh_token"].as_str().unwrap(), Some(ORDERS)).await;
    assert_eq!(status, StatusCode::OK, "{orders:#}");
    let claims = verify_jwt(&app, orders["access_token"].as_str().unwrap()).await;
    assert_eq!((claims["aud"].as_str(), claims["scope"].as_str()), (Some(ORDERS), Some("orders:write")));
}

#[tokio::test]
async fn authorize_refuses_resources_that_are_malformed_or_not_the_client_s() {
    let app = spawn_app().await;
    setup(&app, TokenFormat::Opaque, &[GrantType::AuthorizationCode]).await;
    for (resource, reason) in [
        ("https://elsewhere.example/", "resource_not_allowed"),
        ("orders-api", "resource_invalid"),
        ("https://orders.example/#v1", "resource_invalid"),
    ] {
        let p = pkce();
        let mut params = auth_params(API_APP, WEB_REDIRECT, "openid", &p);
        params.push(("resource", resource));
        let r = app.authorize(&browser(), &params).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{resource}");
        let cb = Callback::parse(&location(&r));
        assert_eq!(cb.get("error"), Some("invalid_target"), "{resource}");
        assert!(cb.get("error_uri").unwrap().ends_with(&format!("/errors/{reason}")), "{resource}");
        assert_eq!(cb.get("state"), Some("state-123"));
    }
    // A client without resources keeps working as before: several `resource` are no duplicate
    // parameter, and a resource it does not have is refused, not ignored.
    let p = pkce();
    let mut params = auth_params(WEB, WEB_REDIRECT, "openid", &p);
    params.push(("resource", ORDERS));
    let cb = Callback::parse(&location(&app.authorize(&browser(), &params).await));
    assert!(cb.get("error_uri").unwrap().ends_with("/errors/resource_not_allowed"));
}

#[tokio::test]
async fn client_credentials_reach_the_client_s_resources_and_a_jwt_client_s_own_tokens_are_for_the_issuer() {
    let app = spawn_app().await;
    let secret = setup(&app, TokenFormat::Jwt, &[GrantType::ClientCredentials]).await;
    let cc = |resource: Option<&'static str>, scope: &'static str| {
        let (app, secret) = (&app, &secret);
        async move {
            let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
            if let Some(r) = resource {
                form.push(("resource", r));
            }
            post(app, secret, "/token", &form).await
        }
    };
    // No resource: the client's format (JWT), for the issuer, with the client as subject.
    let (status, own) = cc(None, "orders:read").await;
    assert_eq!(status, StatusCode::OK, "{own:#}");
    let claims = verify_jwt(&app, own["access_token"].as_str().unwrap()).await;
    assert_eq!((claims["aud"].as_str(), claims["sub"].as_str()), (Some(app.base.as_str()), Some(API_APP)));
    assert!(claims.get("auth_time").is_none());
    // For a resource: its format and its scopes.
    let (status, orders) = cc(Some(ORDERS), "orders:read billing").await;
    assert_eq!(status, StatusCode::OK, "{orders:#}");
    assert_eq!(orders["scope"], "orders:read");
    let (status, billing) = cc(Some(BILLING), "billing").await;
    assert_eq!(status, StatusCode::OK, "{billing:#}");
    assert!(billing["access_token"].as_str().unwrap().starts_with("cda_"));
    // A client may not name a resource it is not registered for, or one that is gone.
    let (_, body) = cc(Some("https://elsewhere.example/"), "orders:read").await;
    assert_reason(&body, "resource_not_allowed", "invalid_target");
    assert_eq!(body["facts"]["allowed"], format!("{ORDERS} {BILLING}"));
    let mut c = app.store.client(API_APP).await.unwrap().unwrap();
    c.id = "api-app-2".into();
    c.resources = vec!["https://orders.example".into()];
    app.store.insert_client(&c).await.unwrap();
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("api-app-2", Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("resource", "https://orders.example")])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_reason(&body, "resource_unknown", "invalid_target");
    assert_eq!(body["facts"]["closest_registered"], ORDERS, "the trailing slash is pointed out");
    assert_eq!(body["facts"]["difference"], "trailing_slash");
    // Removing a resource revokes its tokens.
    assert!(app.store.remove_resource(ORDERS, candor_core::clock::Clock::now(&app.clock)).await.unwrap());
    let (_, intro) = post(&app, &secret, "/introspect", &[("token", orders["access_token"].as_str().unwrap())]).await;
    assert_eq!(intro["reason"], "access_token_revoked");
}

#[tokio::test]
async fn an_id_token_or_an_altered_or_foreign_jwt_at_userinfo_is_named() {
    let app = spawn_app().await;
    let tokens = app.tokens("openid profile").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let body = userinfo_refusal(&app, id_token).await;
    assert_reason(&body, "id_token_as_access_token", "invalid_token");
    assert_eq!(body["facts"]["client_id"], WEB);

    let secret = setup(&app, TokenFormat::Jwt, &[GrantType::ClientCredentials]).await;
    let (_, own) = post(&app, &secret, "/token", &[("grant_type", "client_credentials")]).await;
    let jwt = own["access_token"].as_str().unwrap();
    // The JWT of the client itself (no resource) works at userinfo's door: it has no user, so
    // the answer is about the scope, not the token.
    let r = app.userinfo(jwt).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // One claim changed: the signature no longer verifies.
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims = jwt_parts(jwt).1;
    claims["sub"] = Value::from("someone-else");
    let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
    let body = userinfo_refusal(&app, &forged).await;
    assert_reason(&body, "access_token_malformed", "invalid_token");
    assert_eq!(body["facts"]["defect"], "jwt_signature_invalid");
    // Another provider's token.
    claims["iss"] = Value::from("https://login.other.example");
    let foreign = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
    let body = userinfo_refusal(&app, &foreign).await;
    assert_reason(&body, "access_token_unknown", "invalid_token");
    assert_eq!(body["facts"]["token_issuer"], "https://login.other.example");
}
