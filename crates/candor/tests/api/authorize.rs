//! The authorization endpoint, login and consent.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn an_unknown_client_gets_an_error_page_never_a_redirect() {
    let app = spawn_app().await;
    let r = app
        .authorize(&browser(), &[("response_type", "code"), ("client_id", "nope"), ("redirect_uri", WEB_REDIRECT)])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(r.headers().get("candor-trace-id").is_some());
    let page = r.text().await.unwrap();
    assert!(page.contains("client_unknown"));
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_never_a_redirect() {
    let app = spawn_app().await;
    let p = pkce();
    let r = app.authorize(&browser(), &auth_params(WEB, "https://evil.example/callback", "openid", &p)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("redirect_uri_not_registered"));
}

#[tokio::test]
async fn loopback_redirect_uris_accept_any_port() {
    let app = spawn_app().await;
    let p = pkce();
    let cb = app.authorize_through(&auth_params(SPA, "http://127.0.0.1:53117/cb", "openid", &p)).await;
    assert!(cb.url.starts_with("http://127.0.0.1:53117/cb?code="));
    let (s, body, _) = app
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", SPA),
                ("code", &cb.code()),
                ("redirect_uri", "http://127.0.0.1:53117/cb"),
                ("code_verifier", &p.verifier),
            ],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn errors_after_validation_redirect_with_error_state_and_iss() {
    let app = spawn_app().await;
    let p = pkce();
    let mut params = auth_params(WEB, WEB_REDIRECT, "openid", &p);
    params[0] = ("response_type", "token");
    let r = app.authorize(&browser(), &params).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let cb = Callback::parse(&location(&r));
    assert_eq!(cb.get("error"), Some("unsupported_response_type"));
    assert_eq!(cb.get("error_uri").unwrap().rsplit('/').next(), Some("response_type_unsupported"));
    assert_eq!(cb.get("state"), Some("state-123"));
    assert_eq!(cb.get("iss"), Some(app.base.as_str()));
    assert!(cb.get("error_uri").unwrap().ends_with("/errors/response_type_unsupported"));
}

#[tokio::test]
async fn public_clients_must_use_pkce_and_plain_is_refused_by_default() {
    let app = spawn_app().await;
    let r = app
        .authorize(
            &browser(),
            &[
                ("response_type", "code"),
                ("client_id", SPA),
                ("redirect_uri", SPA_REDIRECT),
                ("scope", "openid"),
                ("state", "s"),
            ],
        )
        .await;
    let cb = Callback::parse(&location(&r));
    assert_eq!(cb.get("error"), Some("invalid_request"));
    assert!(cb.get("error_description").unwrap().contains("code_challenge"));
    let p = pkce();
    let r = app
        .authorize(
            &browser(),
            &[
                ("response_type", "code"),
                ("client_id", WEB),
                ("redirect_uri", WEB_REDIRECT),
                ("scope", "openid"),
                ("code_challenge", &p.challenge),
            ],
        )
        .await;
    let cb = Callback::parse(&location(&r));
    assert_eq!(cb.get("error"), Some("invalid_request"));
    assert!(cb.get("error_uri").unwrap().ends_with("pkce_method_not_allowed"), "a challenge without method is plain");
}

#[tokio::test]
async fn prompt_none_without_a_session_answers_login_required() {
    let app = spawn_app().await;
    let p = pkce();
    let mut params = auth_params(WEB, WEB_REDIRECT, "openid", &p);
    params.push(("prompt", "none"));
    let r = app.authorize(&browser(), &params).await;
    let cb = Callback::parse(&location(&r));
    assert_eq!(cb.get("error"), Some("login_required"));
    assert_eq!(cb.get("state"), Some("state-123"));
}

#[tokio::test]
async fn a_remembered_session_and_consent_give_a_code_without_any_page() {
    let app = spawn_app().await;
    let b = browser();
    let p = pkce();
    let params = auth_params(WEB, WEB_REDIRECT, "openid profile", &p);
    let r = app.authorize(&b, &params).await;
    app.complete(&b, r).await;
    let mut again = params.clone();
    again.push(("prompt", "none"));
    let r = app.authorize(&b, &again).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let cb = Callback::parse(&location(&r));
    assert!(cb.get("code").is_some(), "{}", cb.url);
    // A broader scope than consented needs consent again; with prompt=none that is consent_required.
    let mut broader = auth_params(WEB, WEB_REDIRECT, "openid profile email", &p);
    broader.push(("prompt", "none"));
    let cb = Callback::parse(&location(&app.authorize(&b, &broader).await));
    assert_eq!(cb.get("error"), Some("consent_required"));
}

#[tokio::test]
async fn prompt_login_forces_a_new_login_and_prompt_consent_a_new_consent() {
    let app = spawn_app().await;
    let b = browser();
    let p = pkce();
    let r = app.authorize(&b, &auth_params(WEB, WEB_REDIRECT, "openid", &p)).await;
    app.complete(&b, r).await;
    for prompt in ["login", "consent"] {
        let mut params = auth_params(WEB, WEB_REDIRECT, "openid", &p);
        params.push(("prompt", prompt));
        let r = app.authorize(&b, &params).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "prompt={prompt} shows a page");
        let page = b.get(app.url(&location(&r))).send().await.unwrap().text().await.unwrap();
        let expected = if prompt == "login" { "/login\"" } else { "/consent\"" };
        assert!(page.contains(expected), "prompt={prompt}");
    }
}

#[tokio::test]
async fn login_needs_the_right_password_and_the_csrf_token() {
    let app = spawn_app().await;
    let b = browser();
    let p = pkce();
    let r = app.authorize(&b, &auth_params(WEB, WEB_REDIRECT, "openid", &p)).await;
    let interaction = location(&r);
    let page = b.get(app.url(&interaction)).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_of(&page);
    let r = b
        .post(app.url(&format!("{interaction}/login")))
        .form(&[("csrf", csrf.as_str()), ("username", USER), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("username or password is wrong"));
    let r = b
        .post(app.url(&format!("{interaction}/login")))
        .form(&[("csrf", "forged"), ("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("set-cookie").is_none());
    // Another browser (no binding cookie) cannot use the interaction even with its id.
    let other = browser();
    let r = other.get(app.url(&interaction)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("interaction_expired"));
}

#[tokio::test]
async fn login_issues_a_fresh_hardened_session_cookie() {
    let app = spawn_app().await;
    let b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let p = pkce();
    let r = b.get(app.url("/authorize")).query(&auth_params(WEB, WEB_REDIRECT, "openid", &p)).send().await.unwrap();
    let browser_cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let interaction = location(&r);
    let planted = "candor_session=cdx_planted_by_attacker";
    let cookies = format!("{browser_cookie}; {planted}");
    let page = b.get(app.url(&interaction)).header("cookie", &cookies).send().await.unwrap().text().await.unwrap();
    let r = b
        .post(app.url(&format!("{interaction}/login")))
        .header("cookie", &cookies)
        .form(&[("csrf", csrf_of(&page).as_str()), ("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("candor_session="))
        .unwrap();
    assert!(!set.contains("planted"), "a new session id after login");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "http issuer: no Secure flag (the browser would drop it)");
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let app = spawn_app().await;
    let b = browser();
    let p = pkce();
    let r = app.authorize(&b, &auth_params(WEB, WEB_REDIRECT, "openid", &p)).await;
    let login = b.get(app.url(&location(&r))).send().await.unwrap();
    let consent = {
        let b = browser();
        let r = app.authorize(&b, &auth_params(WEB, WEB_REDIRECT, "openid", &p)).await;
        let page = b.get(app.url(&location(&r))).send().await.unwrap();
        let html = page.text().await.unwrap();
        let action = html.split(r#"action=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
        let form = [("csrf", csrf_of(&html)), ("username", USER.into()), ("password", PASSWORD.into())];
        let r = b.post(app.url(&action)).form(&form).send().await.unwrap();
        b.get(app.url(&location(&r))).send().await.unwrap()
    };
    let refused = app.authorize(&browser(), &[("response_type", "code"), ("client_id", "nope")]).await;
    let index = reqwest::get(app.url("/errors/")).await.unwrap();
    let reason = reqwest::get(app.url("/errors/client_unknown")).await.unwrap();
    let rejections = reqwest::Client::new()
        .get(app.url("/admin/rejections"))
        .bearer_auth(ADMIN_TOKEN)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    for (what, r) in [
        ("login", login),
        ("consent", consent),
        ("error page", refused),
        ("reason index", index),
        ("reason page", reason),
        ("rejections", rejections),
    ] {
        let h = r.headers().clone();
        if !h["content-type"].to_str().unwrap().starts_with("text/html") {
            assert_eq!(what, "rejections", "{what} is not HTML");
            continue;
        }
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in ["default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"] {
            assert!(csp.contains(directive), "{what}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"), "{what}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
        // Nothing inline that the policy would block (or that would need it loosened).
        let body = r.text().await.unwrap().to_ascii_lowercase();
        let marker = match what {
            "login" => r#"name="password""#,
            "consent" => r#"name="decision""#,
            "error page" => "client_unknown",
            _ => "</html>",
        };
        assert!(body.contains(marker), "{what} is not the page meant: {body}");
        for inline in ["<script", "<style", " style=", " onclick=", " onload=", "javascript:"] {
            assert!(!body.contains(inline), "{what} has {inline}");
        }
    }
}

#[tokio::test]
async fn post_to_authorize_is_accepted() {
    let app = spawn_app().await;
    let b = browser();
    let p = pkce();
    let r = b.post(app.url("/authorize")).form(&auth_params(WEB, WEB_REDIRECT, "openid", &p)).send().await.unwrap();
    let cb = app.complete(&b, r).await;
    assert!(cb.get("code").is_some());
}

#[tokio::test]
async fn max_age_forces_a_new_login_when_the_session_is_older() {
    let app = spawn_app().await;
    let b = browser();
    let p = pkce();
    let r = app.authorize(&b, &auth_params(WEB, WEB_REDIRECT, "openid", &p)).await;
    app.complete(&b, r).await;
    app.clock.advance(120);
    let mut params = auth_params(WEB, WEB_REDIRECT, "openid", &p);
    params.push(("max_age", "300"));
    let r = app.authorize(&b, &params).await;
    assert_eq!(r.status(), StatusCode::FOUND, "session younger than max_age: no login");
    params.pop();
    params.push(("max_age", "60"));
    let r = app.authorize(&b, &params).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "session older than max_age: log in again");
    let cb = app.complete(&b, r).await;
    let (_, body) = app.exchange(&cb.code(), &p.verifier).await;
    let claims = jwt_parts(body["id_token"].as_str().unwrap()).1;
    let now = candor_core::clock::Clock::now(&app.clock);
    assert!(now - claims["auth_time"].as_i64().unwrap() <= 1, "auth_time is the new login");
    params.pop();
    params.push(("max_age", "soon"));
    let cb = Callback::parse(&location(&app.authorize(&b, &params).await));
    assert_eq!(cb.get("error"), Some("invalid_request"));
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions() {
    let app = spawn_app().await;
    let b = browser();
    let p = pkce();
    let r = app.authorize(&b, &auth_params(WEB, WEB_REDIRECT, "openid", &p)).await;
    app.complete(&b, r).await;
    app.store.set_disabled(&app.user_id, true).await.unwrap();
    let mut params = auth_params(WEB, WEB_REDIRECT, "openid", &p);
    params.push(("prompt", "none"));
    let cb = Callback::parse(&location(&app.authorize(&b, &params).await));
    assert_eq!(cb.get("error"), Some("login_required"));
}
