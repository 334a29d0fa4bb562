//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and the back-channel logout
//! tokens it sends (Back-Channel Logout 1.0), through the real browser flow.

use crate::helpers::*;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use candor_core::model::{AuthMethod, ClientLogout, GrantType, SigningAlg};
use candor_core::tokens::{Secret, SecretKind};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const RP: &str = "rp";
const SIGNED_OUT: &str = "https://app.example.com/signed-out";

/// A relying party's back-channel logout endpoint: answers with `status` (a 3xx with a
/// Location) and keeps each request's content type and `logout_token`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(String, String)>>>,
}

async fn receiver(status: u16) -> Receiver {
    let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/backchannel?tenant=a", listener.local_addr().unwrap().port());
    let kept = got.clone();
    let handler = move |headers: HeaderMap, axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| {
        let kept = kept.clone();
        async move {
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            kept.lock().unwrap().push((content_type, form.get("logout_token").cloned().unwrap_or_default()));
            let status = AxumStatus::from_u16(status).unwrap();
            let mut answer = HeaderMap::new();
            if status.is_redirection() {
                answer.insert("location", "https://rp.example/login".parse().unwrap());
            }
            (status, answer, "no such session\u{7}")
        }
    };
    let app = axum::Router::new().route("/backchannel", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got }
}

/// A port nothing listens on.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/backchannel")
}

/// Registers a confidential client with `logout` and the code grants.
async fn add_client(app: &mut TestApp, id: &'static str, logout: ClientLogout) {
    let secret = Secret::generate(SecretKind::ClientSecret).unwrap();
    let grants = [GrantType::AuthorizationCode, GrantType::RefreshToken];
    let mut c = client(id, AuthMethod::ClientSecretBasic, &[WEB_REDIRECT], &grants, Some(&secret));
    c.logout = logout;
    app.store.insert_client(&c).await.unwrap();
    app.secrets.insert(id, secret.value);
}

fn rp_logout(backchannel: Option<&str>) -> ClientLogout {
    ClientLogout {
        post_logout_redirect_uris: vec![SIGNED_OUT.into()],
        backchannel_uri: backchannel.map(str::to_string),
        backchannel_session_required: true,
    }
}

/// Signs `client` in through the browser `b` (logging in if `b` has no session) and redeems
/// the code: the token response.
async fn sign_in(app: &TestApp, b: &reqwest::Client, client: &str, scope: &str) -> Value {
    let p = pkce();
    let r = app.authorize(b, &auth_params(client, WEB_REDIRECT, scope, &p)).await;
    let cb = app.complete(b, r).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &cb.code()),
        ("redirect_uri", WEB_REDIRECT),
        ("code_verifier", &p.verifier),
    ];
    let (status, body, _) = app.token(&form, Some(client)).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    body
}

async fn logout(b: &reqwest::Client, app: &TestApp, params: &[(&str, &str)]) -> reqwest::Response {
    b.get(app.url("/logout")).query(params).send().await.unwrap()
}

fn trace_of(r: &reqwest::Response) -> String {
    r.headers()["candor-trace-id"].to_str().unwrap().to_string()
}

fn clears_session_cookie(r: &reqwest::Response) -> bool {
    r.headers().get_all("set-cookie").iter().any(|v| {
        let v = v.to_str().unwrap();
        v.starts_with("candor_session=;") && v.contains("Max-Age=0")
    })
}

async fn sessions(app: &TestApp) -> i64 {
    app.sql_count("SELECT COUNT(*) FROM sessions", &[]).await
}

async fn active(app: &TestApp, token: &str, client: &str) -> bool {
    let (status, body, _) = app.post_form("/introspect", &[("token", token)], Some(client)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["active"] == true
}

/// An error shown in the browser: its status, the reason it names, and never a redirect.
async fn refused_page(r: reqwest::Response, reason: &str) -> String {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none(), "an error is never sent to an unchecked URI");
    assert!(!clears_session_cookie(&r), "a refused logout ends nothing");
    let page = r.text().await.unwrap();
    assert!(page.contains(&format!("/errors/{reason}")), "{reason}: {page}");
    page
}

#[tokio::test]
async fn an_id_token_of_the_session_signs_out_at_once_tells_the_clients_and_revokes_online_grants() {
    let mut app = spawn_app().await;
    let rp = receiver(200).await;
    add_client(&mut app, RP, rp_logout(Some(&rp.url))).await;
    let b = browser();
    // One session, two clients: the RP offline, WEB online (and without a back-channel URI).
    let rp_tokens = sign_in(&app, &b, RP, "openid offline_access").await;
    let web_tokens = sign_in(&app, &b, WEB, "openid").await;
    let id_token = rp_tokens["id_token"].as_str().unwrap();
    let sid = verify_jwt(&app, id_token).await["sid"].as_str().unwrap().to_string();
    assert_eq!(verify_jwt(&app, web_tokens["id_token"].as_str().unwrap()).await["sid"], sid, "one session, one sid");
    // A refresh keeps the session's sid in the new ID token.
    let refresh = rp_tokens["refresh_token"].as_str().unwrap();
    let (status, refreshed, _) =
        app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some(RP)).await;
    assert_eq!(status, StatusCode::OK, "{refreshed:#}");
    assert_eq!(verify_jwt(&app, refreshed["id_token"].as_str().unwrap()).await["sid"], sid);

    let r =
        logout(&b, &app, &[("id_token_hint", id_token), ("post_logout_redirect_uri", SIGNED_OUT), ("state", "st 1/2")])
            .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(&r), format!("{SIGNED_OUT}?state=st+1%2F2"));
    assert!(clears_session_cookie(&r));
    let trace = trace_of(&r);
    assert_eq!(sessions(&app).await, 0);

    // The RP was told, once, with a logout token it can verify.
    let got = rp.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "application/x-www-form-urlencoded");
    let (header, _) = jwt_parts(&got[0].1);
    assert_eq!(header["typ"], "logout+jwt");
    let claims = verify_jwt(&app, &got[0].1).await;
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["aud"], RP);
    assert_eq!(claims["sub"], app.user_id);
    assert_eq!(claims["sid"], sid);
    assert_eq!(claims["events"], json!({ "http://schemas.openid.net/event/backchannel-logout": {} }));
    assert!(claims.get("nonce").is_none());
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 120);

    // WEB's online grant ended with the session; the RP's offline_access grant outlives it.
    assert!(!active(&app, web_tokens["access_token"].as_str().unwrap(), WEB).await);
    let refresh = refreshed["refresh_token"].as_str().unwrap();
    let (status, body, _) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some(RP)).await;
    assert_eq!(status, StatusCode::OK, "offline access survives logout: {body:#}");

    let e = app.explain(&trace).await;
    assert_eq!(e["outcome"], "succeeded", "{e:#}");
    assert_eq!(e["facts"]["session_ended"], true);
    assert_eq!(e["facts"]["signed_in_clients"], 2);
    assert_eq!(e["facts"]["tokens_revoked"], 1, "WEB's access token");
    assert_eq!(e["facts"]["backchannel"][RP]["outcome"], "delivered", "{e:#}");

    // The browser signs in again from scratch.
    let p = pkce();
    let r = app.authorize(&b, &auth_params(WEB, WEB_REDIRECT, "openid", &p)).await;
    let next = location(&r);
    let page = b.get(app.url(&next)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"name="password""#), "asked to log in again");
}

#[tokio::test]
async fn without_a_hint_the_user_is_asked_on_a_csrf_bound_form() {
    let mut app = spawn_app().await;
    add_client(&mut app, RP, rp_logout(None)).await;
    let b = browser();
    sign_in(&app, &b, RP, "openid").await;
    let asked = [("client_id", RP), ("post_logout_redirect_uri", SIGNED_OUT), ("state", "s1")];
    let r = logout(&b, &app, &asked).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("Sign out?") && page.contains("rp app") && page.contains(USER), "{page}");
    assert_eq!(sessions(&app).await, 1, "nothing ends before the user answers");
    let csrf = csrf_of(&page);
    let confirm = |b: &reqwest::Client, csrf: &str, decision: &str| {
        let mut form = vec![("csrf", csrf.to_string()), ("decision", decision.to_string())];
        form.extend(asked.iter().map(|(k, v)| (*k, v.to_string())));
        b.post(app.url("/logout/confirm")).form(&form).send()
    };

    // A form posted from another browser, or with another token, is refused.
    let r = confirm(&browser(), &csrf, "logout").await.unwrap();
    refused_page(r, "parameter_invalid").await;
    let r = confirm(&b, "forged", "logout").await.unwrap();
    assert!(refused_page(r, "parameter_invalid").await.contains("csrf"));
    assert_eq!(sessions(&app).await, 1);

    // "Stay signed in" goes back to the application and ends nothing.
    let r = confirm(&b, &csrf, "stay").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("{SIGNED_OUT}?state=s1"));
    assert_eq!(sessions(&app).await, 1);

    let r = confirm(&b, &csrf, "logout").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("{SIGNED_OUT}?state=s1"));
    assert!(clears_session_cookie(&r));
    assert_eq!(sessions(&app).await, 0);

    // Asked again with nobody signed in: done at once, nothing to confirm.
    let r = logout(&browser(), &app, &asked).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let e = app.explain(&trace_of(&r)).await;
    assert_eq!(e["facts"]["session_ended"], false);
    // Without a client, the user stays on a page that says so.
    let r = logout(&browser(), &app, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("was not signed in"));
}

#[tokio::test]
async fn a_hint_of_another_session_or_user_is_confirmed_and_an_expired_one_is_accepted() {
    let mut app = spawn_app().await;
    add_client(&mut app, RP, rp_logout(None)).await;
    let earlier = sign_in(&app, &browser(), RP, "openid").await;
    let b = browser();
    let current = sign_in(&app, &b, RP, "openid").await;
    // An ID token of the user's other session: asked first.
    let r = logout(&b, &app, &[("id_token_hint", earlier["id_token"].as_str().unwrap())]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("earlier session"));
    assert_eq!(sessions(&app).await, 2);
    // Its own ID token, expired long ago (RP-Initiated Logout 1.0 §2: expired hints are accepted).
    app.clock.advance(3 * 3600);
    let r = logout(&b, &app, &[("id_token_hint", current["id_token"].as_str().unwrap())]).await;
    assert_eq!(r.status(), StatusCode::OK, "no post_logout_redirect_uri: the signed-out page");
    assert!(clears_session_cookie(&r));
    assert!(r.text().await.unwrap().contains("You are signed out"));
    assert_eq!(sessions(&app).await, 1, "the other browser's session stays");
}

#[tokio::test]
async fn refused_logout_requests_are_explained_on_a_page_never_redirected() {
    let mut app = spawn_app().await;
    add_client(&mut app, RP, rp_logout(None)).await;
    let b = browser();
    let tokens = sign_in(&app, &b, RP, "openid").await;
    let hint = tokens["id_token"].as_str().unwrap();

    // A post_logout_redirect_uri one slash off the registered one.
    let r = logout(
        &b,
        &app,
        &[("id_token_hint", hint), ("post_logout_redirect_uri", "https://app.example.com/signed-out/")],
    )
    .await;
    let trace = trace_of(&r);
    refused_page(r, "post_logout_redirect_uri_not_registered").await;
    let e = app.explain(&trace).await;
    assert_eq!(e["reason"], "post_logout_redirect_uri_not_registered");
    assert_eq!(e["facts"]["closest_registered"], SIGNED_OUT);
    assert_eq!(e["facts"]["client_id"], RP);
    // One registered for another client only (WEB has none).
    let r = logout(&b, &app, &[("client_id", WEB), ("post_logout_redirect_uri", SIGNED_OUT)]).await;
    refused_page(r, "post_logout_redirect_uri_not_registered").await;
    // A redirect URI and nobody to check it against.
    let r = logout(&b, &app, &[("post_logout_redirect_uri", SIGNED_OUT)]).await;
    refused_page(r, "post_logout_redirect_uri_without_client").await;
    // client_id and the hint's client disagree.
    let r = logout(&b, &app, &[("id_token_hint", hint), ("client_id", WEB)]).await;
    let trace = trace_of(&r);
    refused_page(r, "id_token_hint_client_mismatch").await;
    assert_eq!(app.explain(&trace).await["facts"]["id_token_hint_client"], RP);
    // Hints that are no ID token of this provider.
    let foreign_key = candor_core::keys::generate(SigningAlg::RS256, 0).unwrap();
    let foreign = candor_core::keys::KeyRing::from_records(&[foreign_key]).unwrap();
    let claims = json!({ "iss": app.base, "sub": app.user_id, "aud": RP, "iat": 0, "exp": 1 });
    let forged = foreign.active(SigningAlg::RS256).unwrap().sign_jwt(&claims).unwrap();
    let altered = format!("{}x", &hint[..hint.len() - 1]);
    for bad in ["not-a-jwt", &forged, &altered] {
        let r = logout(&b, &app, &[("id_token_hint", bad)]).await;
        let trace = trace_of(&r);
        refused_page(r, "id_token_hint_invalid").await;
        let e = app.explain(&trace).await;
        assert!(e["facts"]["defect"].is_string(), "{e:#}");
    }
    // An access token is not an ID token.
    let r = logout(&b, &app, &[("id_token_hint", tokens["access_token"].as_str().unwrap())]).await;
    refused_page(r, "id_token_hint_invalid").await;
    // An unknown client, a state that would forge a header, a parameter twice.
    let r = logout(&b, &app, &[("client_id", "nope")]).await;
    refused_page(r, "client_unknown").await;
    let r = logout(&b, &app, &[("client_id", RP), ("state", "a\r\nSet-Cookie: x=y")]).await;
    refused_page(r, "parameter_invalid").await;
    let r = logout(&b, &app, &[("state", "a"), ("state", "b")]).await;
    refused_page(r, "parameter_duplicated").await;
    assert_eq!(sessions(&app).await, 1, "no refusal ended the session");
}

#[tokio::test]
async fn each_back_channel_delivery_s_outcome_is_recorded_and_shown() {
    let mut app = spawn_app().await;
    let (refusing, redirecting) = (receiver(400).await, receiver(302).await);
    add_client(&mut app, "rp-refuses", rp_logout(Some(&refusing.url))).await;
    add_client(&mut app, "rp-redirects", rp_logout(Some(&redirecting.url))).await;
    add_client(&mut app, "rp-down", rp_logout(Some(&closed_port_url().await))).await;
    let b = browser();
    for c in ["rp-refuses", "rp-redirects", "rp-down"] {
        sign_in(&app, &b, c, "openid").await;
    }
    let page = logout(&b, &app, &[]).await.text().await.unwrap();
    let form = [("csrf", csrf_of(&page)), ("decision", "logout".to_string())];
    let r = b.post(app.url("/logout/confirm")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let trace = trace_of(&r);
    let page = r.text().await.unwrap();
    assert!(page.contains("answered HTTP 400") && page.contains("could not be told"), "{page}");
    assert_eq!(refusing.got.lock().unwrap().len(), 1);
    assert_eq!(redirecting.got.lock().unwrap().len(), 1, "posted once, the redirect not followed");

    let e = app.explain(&trace).await;
    let told = &e["facts"]["backchannel"];
    assert_eq!(told["rp-refuses"]["outcome"], "refused", "{e:#}");
    assert_eq!(told["rp-refuses"]["status"], 400);
    assert_eq!(told["rp-refuses"]["answer"], "no such session", "control characters dropped");
    assert_eq!(told["rp-redirects"]["status"], 302);
    assert!(told["rp-redirects"]["answer"].as_str().unwrap().contains("not followed"));
    assert_eq!(told["rp-down"]["outcome"], "failed");
    assert!(told["rp-down"]["problem"].as_str().unwrap().starts_with("cannot connect"), "{e:#}");
}

#[tokio::test]
async fn a_code_of_the_session_not_yet_redeemed_at_logout_never_is() {
    let mut app = spawn_app().await;
    add_client(&mut app, RP, rp_logout(None)).await;
    let b = browser();
    let tokens = sign_in(&app, &b, RP, "openid").await;
    // WEB gets a code in the same session; the user signs out before WEB redeems it.
    let p = pkce();
    let r = app.authorize(&b, &auth_params(WEB, WEB_REDIRECT, "openid offline_access", &p)).await;
    let cb = app.complete(&b, r).await;
    let r = logout(&b, &app, &[("id_token_hint", tokens["id_token"].as_str().unwrap())]).await;
    assert_eq!(r.status(), StatusCode::OK);
    app.clock.advance(5);
    let (status, body) = app.exchange(&cb.code(), &p.verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "code_session_ended", "invalid_grant");
    assert!(body["facts"]["session_ended_at"].is_string() && body["facts"]["issued_at"].is_string(), "{body:#}");
    // The refusal did not use the code up into anything: no tokens exist for it.
    let grants = app.sql_count("SELECT COUNT(*) FROM access_tokens WHERE client_id = $1", &[WEB]).await;
    assert_eq!(grants, 0);
}
