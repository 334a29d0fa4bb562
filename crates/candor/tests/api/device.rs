//! The device authorization grant (RFC 8628): the device's request, the verification page driven
//! through its real forms (code, login, confirmation), and the polls, with every refusal named.

use crate::helpers::*;
use candor_core::model::{AuthMethod, GrantType};
use reqwest::StatusCode;
use serde_json::Value;

const TV: &str = "tv";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Registers the public device client `tv` (device code and refresh grants).
async fn with_tv(app: &TestApp) {
    let c = client(TV, AuthMethod::None, &[], &[GrantType::DeviceCode, GrantType::RefreshToken], None);
    app.store.insert_client(&c).await.unwrap();
}

/// A device authorization for `tv`.
async fn start(app: &TestApp, scope: &str) -> Value {
    let (status, body, headers) =
        app.post_form("/device_authorization", &[("client_id", TV), ("scope", scope)], None).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(headers["cache-control"], "no-store");
    body
}

/// One poll of `tv` with the device code.
async fn poll(app: &TestApp, auth: &Value) -> (StatusCode, Value) {
    let device_code = auth["device_code"].as_str().unwrap();
    let (status, body, _) =
        app.token(&[("grant_type", DEVICE_GRANT), ("device_code", device_code), ("client_id", TV)], None).await;
    (status, body)
}

/// The verification page in a browser: GET with `verification_uri_complete`, the code posted as
/// shown, sign-in, then `decision` on the confirmation page. Returns the final page's text.
async fn decide(app: &TestApp, b: &reqwest::Client, auth: &Value, decision: &str) -> String {
    let page = b.get(auth["verification_uri_complete"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    let user_code = auth["user_code"].as_str().unwrap();
    assert!(page.contains(&format!(r#"value="{user_code}""#)), "the code is filled in: {page}");
    assert!(page.contains("Check that this code is the one your device shows"));
    let r =
        b.post(app.url("/device")).form(&[("csrf", csrf_of(&page).as_str()), ("user_code", user_code)]).send().await;
    let mut r = r.unwrap();
    for _ in 0..6 {
        match r.status() {
            StatusCode::SEE_OTHER => {
                let loc = location(&r);
                r = b.get(app.url(&loc)).send().await.unwrap();
            }
            StatusCode::OK => {
                let page = r.text().await.unwrap();
                if !page.contains(r#"name="csrf""#) {
                    return page;
                }
                let csrf = csrf_of(&page);
                let action = page.split(r#"action=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
                let form: Vec<(&str, &str)> = if action.ends_with("/login") {
                    assert!(page.contains("to connect a device to"), "{page}");
                    vec![("csrf", &csrf), ("username", USER), ("password", PASSWORD)]
                } else {
                    assert!(page.contains(user_code), "the confirmation shows the code: {page}");
                    assert!(page.contains("tv app"), "and the client: {page}");
                    vec![("csrf", &csrf), ("decision", decision)]
                };
                r = b.post(app.url(&action)).form(&form).send().await.unwrap();
            }
            other => panic!("unexpected status {other}: {}", r.text().await.unwrap()),
        }
    }
    panic!("too many steps")
}

#[tokio::test]
async fn a_device_is_approved_at_the_verification_page_and_its_code_is_exchanged_once() {
    let app = spawn_app().await;
    with_tv(&app).await;
    let auth = start(&app, "openid profile offline_access").await;
    assert!(auth["device_code"].as_str().unwrap().starts_with("cdv_"), "{auth:#}");
    let user_code = auth["user_code"].as_str().unwrap();
    assert!(
        user_code.len() == 9
            && user_code.chars().enumerate().all(|(i, c)| if i == 4 {
                c == '-'
            } else {
                "BCDFGHJKLMNPQRSTVWXZ".contains(c)
            }),
        "{user_code}"
    );
    assert_eq!(auth["verification_uri"], app.url("/device"));
    assert_eq!(auth["verification_uri_complete"], app.url(&format!("/device?user_code={user_code}")));
    assert_eq!((auth["expires_in"].as_i64(), auth["interval"].as_i64()), (Some(600), Some(5)));

    // Before the user decides: pending, then slow_down for a poll that comes too soon.
    let (status, body) = poll(&app, &auth).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "device_authorization_pending", "authorization_pending");
    assert_eq!(body["facts"]["interval"], 5, "{body:#}");
    let (_, body) = poll(&app, &auth).await;
    assert_reason(&body, "device_polling_too_fast", "slow_down");
    assert_eq!((body["facts"]["interval_was"].as_i64(), body["facts"]["interval"].as_i64()), (Some(5), Some(10)));
    app.clock.advance(10);
    let (_, body) = poll(&app, &auth).await;
    assert_reason(&body, "device_authorization_pending", "authorization_pending");
    assert_eq!(body["facts"]["interval"], 10, "the raised interval stays: {body:#}");

    let done = decide(&app, &browser(), &auth, "allow").await;
    assert!(done.contains("Device connected"), "{done}");

    app.clock.advance(10);
    let (status, tokens) = poll(&app, &auth).await;
    assert_eq!(status, StatusCode::OK, "{tokens:#}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "offline_access openid profile");
    assert!(tokens["refresh_token"].is_string());
    let claims = verify_jwt(&app, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!((claims["sub"].as_str(), claims["aud"].as_str()), (Some(app.user_id.as_str()), Some(TV)));
    let access = tokens["access_token"].as_str().unwrap();
    let me: Value = app.userinfo(access).await.json().await.unwrap();
    assert_eq!(me["preferred_username"], USER, "{me:#}");

    // The refresh token works for the device client.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, refreshed, _) =
        app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", TV)], None).await;
    assert_eq!(status, StatusCode::OK, "{refreshed:#}");

    // A second exchange: refused, and the grant's tokens (refreshed ones too) revoked.
    app.clock.advance(10);
    let (_, body) = poll(&app, &auth).await;
    assert_reason(&body, "device_code_already_used", "invalid_grant");
    assert_eq!(body["facts"]["grant_revoked"], true, "{body:#}");
    assert_eq!(body["facts"]["tokens_revoked_now"], 4, "both access tokens and both refresh tokens: {body:#}");
    let r = app.userinfo(refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The grant's timeline: the device's request, the user's decision, the exchange, the replay.
    let trace = body["trace_id"].as_str().unwrap();
    let explained = app.explain(trace).await;
    let timeline = explained.to_string();
    for step in [
        "device_authorization request succeeded",
        "token request refused: device_polling_too_fast",
        "the user approved the device at the verification page",
        "refresh token rotated",
    ] {
        assert!(timeline.contains(step), "{step} in {explained:#}");
    }
}

#[tokio::test]
async fn a_denied_or_expired_device_authorization_is_named_to_the_device_and_at_the_page() {
    let app = spawn_app().await;
    with_tv(&app).await;
    let denied = start(&app, "openid").await;
    let done = decide(&app, &browser(), &denied, "deny").await;
    assert!(done.contains("Access denied"), "{done}");
    let (status, body) = poll(&app, &denied).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "device_access_denied", "access_denied");
    assert!(body["facts"]["denied_at"].is_string());

    // The same code cannot be decided again.
    let b = browser();
    let page = b.get(app.url("/device")).send().await.unwrap().text().await.unwrap();
    let form = [("csrf", csrf_of(&page)), ("user_code", denied["user_code"].as_str().unwrap().to_lowercase())];
    let r = b.post(app.url("/device")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let text = r.text().await.unwrap();
    assert!(text.contains("already used") && text.contains("user_code_used"), "{text}");

    let expired = start(&app, "openid").await;
    app.clock.advance(601);
    let (_, body) = poll(&app, &expired).await;
    assert_reason(&body, "device_code_expired", "expired_token");
    assert_eq!(
        (body["facts"]["lifetime_seconds"].as_i64(), body["facts"]["status"].as_str()),
        (Some(600), Some("pending"))
    );
    let form = [("csrf", csrf_of(&page)), ("user_code", expired["user_code"].as_str().unwrap().replace('-', " "))];
    let text = b.post(app.url("/device")).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("expired") && text.contains("user_code_expired"), "{text}");
}

#[tokio::test]
async fn the_device_request_and_the_polls_are_checked_like_every_client_request() {
    let app = spawn_app().await;
    with_tv(&app).await;
    // A client not registered for the grant.
    let (status, body, _) = app.post_form("/device_authorization", &[("scope", "openid")], Some(WEB)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "grant_type_not_allowed_for_client", "unauthorized_client");
    assert_eq!(body["facts"]["grant_type"], DEVICE_GRANT);
    // A scope the client may not have; an unknown client.
    let (_, body, _) = app.post_form("/device_authorization", &[("client_id", TV), ("scope", "admin")], None).await;
    assert_reason(&body, "scope_not_allowed", "invalid_scope");
    let (status, body, _) = app.post_form("/device_authorization", &[("client_id", "nobody")], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client", "{body:#}");

    let auth = start(&app, "openid").await;
    // Another client polling with tv's code learns nothing about it.
    let device_code = auth["device_code"].as_str().unwrap();
    let mut spa = client("tv2", AuthMethod::None, &[], &[GrantType::DeviceCode], None);
    spa.name = "other device".into();
    app.store.insert_client(&spa).await.unwrap();
    let (_, body, _) =
        app.token(&[("grant_type", DEVICE_GRANT), ("device_code", device_code), ("client_id", "tv2")], None).await;
    assert_reason(&body, "device_code_issued_to_other_client", "invalid_grant");
    assert!(body["facts"].get("issued_to").is_none(), "{body:#}");
    // The user code sent as the device code; a device code cut short; the grant's short name.
    let user_code = auth["user_code"].as_str().unwrap();
    let (_, body, _) =
        app.token(&[("grant_type", DEVICE_GRANT), ("device_code", user_code), ("client_id", TV)], None).await;
    assert_reason(&body, "device_code_unknown", "invalid_grant");
    assert!(body["facts"]["problem"].as_str().unwrap().contains("user_code"), "{body:#}");
    let cut = &device_code[..device_code.len() - 3];
    let (_, body, _) = app.token(&[("grant_type", DEVICE_GRANT), ("device_code", cut), ("client_id", TV)], None).await;
    assert_reason(&body, "device_code_unknown", "invalid_grant");
    assert_eq!(body["facts"]["defect"], "truncated", "{body:#}");
    let (_, body, _) =
        app.token(&[("grant_type", "device_code"), ("device_code", device_code), ("client_id", TV)], None).await;
    assert_reason(&body, "grant_type_unsupported", "unsupported_grant_type");
    assert_eq!(body["facts"]["did_you_mean"], DEVICE_GRANT, "{body:#}");
    let (_, body, _) = app.token(&[("grant_type", DEVICE_GRANT), ("client_id", TV)], None).await;
    assert_reason(&body, "parameter_missing", "invalid_request");

    // Discovery advertises the endpoint and the grant.
    let d: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(d["device_authorization_endpoint"], app.url("/device_authorization"));
    assert!(d["grant_types_supported"].as_array().unwrap().iter().any(|g| g == DEVICE_GRANT));
}

#[tokio::test]
async fn wrong_user_codes_are_explained_and_throttled_by_address() {
    let app = spawn_app_with(|s| s.login_address_free_failures = 3, candor_server::Disclosure::Detailed).await;
    with_tv(&app).await;
    let auth = start(&app, "openid").await;
    let b = browser();
    let page = b.get(app.url("/device")).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_of(&page);
    let enter = |code: &'static str| {
        let b = b.clone();
        let csrf = csrf.clone();
        let url = app.url("/device");
        async move {
            let r = b.post(url).form(&[("csrf", csrf.as_str()), ("user_code", code)]).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (status, text) = enter("BCDF-GHJ0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("user_code_unknown") && text.contains("&#x27;0&#x27;"), "{text}");
    let (_, text) = enter("BCDF-GHJ").await;
    assert!(text.contains("7 letters"), "{text}");
    let (_, text) = enter("BCDF-GHJK").await;
    assert!(text.contains("no device is waiting"), "{text}");
    // The fourth wrong code from this address waits; so does a right one, until the wait is over.
    let (status, text) = enter("BCDF-GHJL").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(text.contains("Too many wrong codes"));
    let right = auth["user_code"].as_str().unwrap();
    let r = b.post(app.url("/device")).form(&[("csrf", csrf.as_str()), ("user_code", right)]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance(3);
    let r = b.post(app.url("/device")).form(&[("csrf", csrf.as_str()), ("user_code", right)]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/interaction/"));

    // A form without the browser's CSRF token is refused before the code is looked at.
    let r = browser().post(app.url("/device")).form(&[("csrf", "forged"), ("user_code", right)]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("CSRF"));
}

#[tokio::test]
async fn a_device_token_is_issued_for_a_resource_the_device_asked_for() {
    let app = spawn_app().await;
    let api = candor_core::model::Resource {
        id: "https://api.example/".into(),
        name: "Example API".into(),
        scopes: vec!["profile".into()],
        access_token_format: candor_core::model::TokenFormat::Jwt,
        access_token_lifetime: None,
        signing_alg: candor_core::model::SigningAlg::ES256,
        created_at: 0,
    };
    app.store.insert_resource(&api).await.unwrap();
    let mut tv = client(TV, AuthMethod::None, &[], &[GrantType::DeviceCode], None);
    tv.resources = vec![api.id.clone()];
    app.store.insert_client(&tv).await.unwrap();
    let (status, other, _) = app
        .post_form("/device_authorization", &[("client_id", TV), ("resource", "https://other.example/")], None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&other, "resource_not_allowed", "invalid_target");
    let (_, auth, _) = app
        .post_form(
            "/device_authorization",
            &[("client_id", TV), ("scope", "openid profile"), ("resource", &api.id)],
            None,
        )
        .await;
    let page = decide(&app, &browser(), &auth, "allow").await;
    assert!(page.contains("Device connected"));
    let (status, tokens) = poll(&app, &auth).await;
    assert_eq!(status, StatusCode::OK, "{tokens:#}");
    let (header, claims) = jwt_parts(tokens["access_token"].as_str().unwrap());
    assert_eq!((header["typ"].as_str(), claims["aud"].as_str()), (Some("at+jwt"), Some(api.id.as_str())));
    assert_eq!(claims["scope"], "profile");
}
