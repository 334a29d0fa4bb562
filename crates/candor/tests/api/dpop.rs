//! DPoP (RFC 9449): tokens bound to the key of the proof they were requested with, usable only
//! with fresh proofs by that key, at /token and at /userinfo; every broken rule named.

use crate::helpers::*;
use aws_lc_rs::digest;
use candor_core::clock::Clock;
use candor_core::dpop::thumbprint;
use candor_core::keys::{SigningKey, generate};
use candor_core::model::SigningAlg;
use candor_core::tokens::b64url;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};

fn key(alg: SigningAlg) -> SigningKey {
    SigningKey::parse(&generate(alg, 0).unwrap()).unwrap()
}

fn jwk(k: &SigningKey) -> Value {
    let mut jwk = k.public_jwk();
    let m = jwk.as_object_mut().unwrap();
    m.remove("kid");
    m.remove("use");
    jwk
}

/// A proof by `k` for `method` at `url`, made at `iat`, with `ath` for `token` and a nonce if given.
fn proof_at(k: &SigningKey, method: &str, url: &str, iat: i64, token: Option<&str>, nonce: Option<&str>) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let mut claims = json!({
        "jti": format!("jti-{}-{}", N.fetch_add(1, Ordering::Relaxed), iat),
        "htm": method,
        "htu": url,
        "iat": iat,
    });
    if let Some(t) = token {
        claims["ath"] = json!(b64url(digest::digest(&digest::SHA256, t.as_bytes()).as_ref()));
    }
    if let Some(n) = nonce {
        claims["nonce"] = json!(n);
    }
    k.sign_with_header(&json!({ "typ": "dpop+jwt", "alg": k.alg.as_str(), "jwk": jwk(k) }), &claims).unwrap()
}

fn proof(app: &TestApp, k: &SigningKey, method: &str, path: &str, token: Option<&str>) -> String {
    proof_at(k, method, &app.url(path), app.clock.now(), token, None)
}

/// POSTs `form` to /token with `dpop` as the DPoP header, as `basic` (with its secret) if given.
async fn token_with(
    app: &TestApp,
    form: &[(&str, &str)],
    basic: Option<&str>,
    dpop: Option<&str>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new().post(app.url("/token")).form(form);
    if let Some(id) = basic {
        req = req.basic_auth(id, Some(app.secret(id)));
    }
    if let Some(p) = dpop {
        req = req.header("DPoP", p);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, r.json().await.unwrap(), headers)
}

async fn userinfo_with(app: &TestApp, scheme: &str, token: &str, dpop: Option<&str>) -> (StatusCode, Value, String) {
    let mut req = reqwest::Client::new().get(app.url("/userinfo")).header("Authorization", format!("{scheme} {token}"));
    if let Some(p) = dpop {
        req = req.header("DPoP", p);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, r.json().await.unwrap(), challenge)
}

/// A code for the public SPA client with offline_access; returns the code and its verifier.
async fn spa_code(app: &TestApp, extra: &[(&str, &str)]) -> (String, String) {
    let p = pkce();
    let mut params = auth_params(SPA, SPA_REDIRECT, "openid profile offline_access", &p);
    params.extend_from_slice(extra);
    let cb = app.authorize_through(&params).await;
    (cb.code(), p.verifier.clone())
}

fn exchange_form<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", SPA),
        ("code", code),
        ("redirect_uri", SPA_REDIRECT),
        ("code_verifier", verifier),
    ]
}

#[tokio::test]
async fn tokens_are_bound_to_the_proof_key_and_work_only_with_fresh_proofs_by_it() {
    let app = spawn_app().await;
    let (a, b) = (key(SigningAlg::ES256), key(SigningAlg::EdDSA));
    let (code, verifier) = spa_code(&app, &[]).await;
    let (status, tokens, _) =
        token_with(&app, &exchange_form(&code, &verifier), None, Some(&proof(&app, &a, "POST", "/token", None))).await;
    assert_eq!(status, StatusCode::OK, "{tokens:#}");
    assert_eq!(tokens["token_type"], "DPoP");
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();

    // At userinfo: not as Bearer, not without a proof, not with another key, and each proof once.
    let (status, body, challenge) = userinfo_with(&app, "Bearer", at, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_reason(&body, "access_token_dpop_bound", "invalid_token");
    assert!(challenge.starts_with(r#"DPoP algs="RS256 ES256 EdDSA", error="invalid_token""#), "{challenge}");
    let (status, body, _) = userinfo_with(&app, "DPoP", at, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_reason(&body, "dpop_proof_invalid", "invalid_dpop_proof");
    let (_, body, _) = userinfo_with(&app, "DPoP", at, Some(&proof(&app, &b, "GET", "/userinfo", Some(at)))).await;
    assert_reason(&body, "dpop_key_mismatch", "invalid_token");
    assert_eq!(body["facts"]["bound_to"], thumbprint(&a.public_jwk()).unwrap());
    let (_, body, _) = userinfo_with(&app, "DPoP", at, Some(&proof(&app, &a, "GET", "/userinfo", None))).await;
    assert_reason(&body, "dpop_proof_invalid", "invalid_dpop_proof");
    assert!(body["facts"]["problem"].as_str().unwrap().contains("ath"), "{body:#}");
    let good = proof(&app, &a, "GET", "/userinfo", Some(at));
    let (status, claims, _) = userinfo_with(&app, "DPoP", at, Some(&good)).await;
    assert_eq!(status, StatusCode::OK, "{claims:#}");
    assert_eq!(claims["sub"], app.user_id.as_str());
    let (_, body, _) = userinfo_with(&app, "DPoP", at, Some(&good)).await;
    assert_reason(&body, "dpop_proof_replayed", "invalid_dpop_proof");

    // The public client's refresh token is bound too; refusals leave it unrotated.
    let refresh = [("grant_type", "refresh_token"), ("client_id", SPA), ("refresh_token", rt)];
    let (status, body, _) = token_with(&app, &refresh, None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "dpop_proof_missing", "invalid_request");
    let (_, body, _) = token_with(&app, &refresh, None, Some(&proof(&app, &b, "POST", "/token", None))).await;
    assert_reason(&body, "dpop_key_mismatch", "invalid_grant");
    let (status, next, _) = token_with(&app, &refresh, None, Some(&proof(&app, &a, "POST", "/token", None))).await;
    assert_eq!(status, StatusCode::OK, "{next:#}");
    assert_eq!(next["token_type"], "DPoP");

    // An unbound token is refused under the DPoP scheme, and stays a Bearer token.
    let plain = app.tokens("openid").await;
    let plain_at = plain["access_token"].as_str().unwrap();
    assert_eq!(plain["token_type"], "Bearer");
    let (_, body, _) =
        userinfo_with(&app, "DPoP", plain_at, Some(&proof(&app, &a, "GET", "/userinfo", Some(plain_at)))).await;
    assert_reason(&body, "dpop_key_mismatch", "invalid_token");
    assert_eq!(app.userinfo(plain_at).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_bound_client_credentials_token_introspects_with_its_confirmation() {
    let app = spawn_app().await;
    let k = key(SigningAlg::RS256);
    let (status, tokens, _) = token_with(
        &app,
        &[("grant_type", "client_credentials")],
        Some(SERVICE),
        Some(&proof(&app, &k, "POST", "/token", None)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens:#}");
    assert_eq!(tokens["token_type"], "DPoP");
    let (_, intro, _) =
        app.post_form("/introspect", &[("token", tokens["access_token"].as_str().unwrap())], Some(SERVICE)).await;
    assert_eq!(intro["active"], true, "{intro:#}");
    assert_eq!(intro["token_type"], "DPoP");
    assert_eq!(intro["cnf"]["jkt"], thumbprint(&k.public_jwk()).unwrap());
}

#[tokio::test]
async fn a_proof_for_another_target_or_time_is_named_with_what_differs() {
    let app = spawn_app().await;
    let k = key(SigningAlg::ES256);
    let cc = [("grant_type", "client_credentials")];
    let now = app.clock.now();
    let behind_proxy = proof_at(&k, "POST", "http://candor:8080/token", now, None, None);
    let (status, body, _) = token_with(&app, &cc, Some(SERVICE), Some(&behind_proxy)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "dpop_proof_wrong_target", "invalid_dpop_proof");
    assert_eq!(
        (body["facts"]["claim"].as_str(), body["facts"]["expected"].as_str()),
        (Some("htu"), Some(app.url("/token").as_str()))
    );
    let (_, body, _) =
        token_with(&app, &cc, Some(SERVICE), Some(&proof_at(&k, "GET", &app.url("/token"), now, None, None))).await;
    assert_eq!(body["facts"]["claim"], "htm");
    let (_, body, _) =
        token_with(&app, &cc, Some(SERVICE), Some(&proof_at(&k, "POST", &app.url("/token"), now - 200, None, None)))
            .await;
    assert_reason(&body, "dpop_proof_stale", "invalid_dpop_proof");
    assert_eq!(body["facts"]["seconds_old"], 200);
    // The URL as RFC 3986 normalises it, and its query, do not matter.
    let upper = app.url("/token?x=1").replacen("http", "HTTP", 1);
    let (status, body, _) =
        token_with(&app, &cc, Some(SERVICE), Some(&proof_at(&k, "POST", &upper, now, None, None))).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    // Two DPoP headers, or a plain JWT in it.
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(SERVICE, Some(app.secret(SERVICE)))
        .header("DPoP", proof(&app, &k, "POST", "/token", None))
        .header("DPoP", proof(&app, &k, "POST", "/token", None))
        .form(&cc)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_reason(&body, "dpop_proof_invalid", "invalid_dpop_proof");
    let plain = k.sign_jwt(&json!({"jti": "x", "htm": "POST", "htu": app.url("/token"), "iat": now})).unwrap();
    let (_, body, _) = token_with(&app, &cc, Some(SERVICE), Some(&plain)).await;
    assert!(body["facts"]["problem"].as_str().unwrap().contains("dpop+jwt"), "{body:#}");
}

#[tokio::test]
async fn with_nonces_on_the_first_proof_gets_one_and_the_retry_succeeds() {
    let app = spawn_app_with(|s| s.dpop_nonce = true, candor_server::Disclosure::Detailed).await;
    let k = key(SigningAlg::ES256);
    let cc = [("grant_type", "client_credentials")];
    let (status, body, headers) =
        token_with(&app, &cc, Some(SERVICE), Some(&proof(&app, &k, "POST", "/token", None))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "dpop_nonce_required", "use_dpop_nonce");
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_string();
    assert_eq!(body["facts"]["nonce"], nonce.as_str());
    let with_nonce = proof_at(&k, "POST", &app.url("/token"), app.clock.now(), None, Some(&nonce));
    let (status, tokens, headers) = token_with(&app, &cc, Some(SERVICE), Some(&with_nonce)).await;
    assert_eq!(status, StatusCode::OK, "{tokens:#}");
    assert!(headers.contains_key("dpop-nonce"), "a fresh nonce rides along");
    // Ten minutes later the nonce is stale: a new one is handed out.
    app.clock.advance(700);
    let stale = proof_at(&k, "POST", &app.url("/token"), app.clock.now(), None, Some(&nonce));
    let (_, body, headers) = token_with(&app, &cc, Some(SERVICE), Some(&stale)).await;
    assert_reason(&body, "dpop_nonce_required", "use_dpop_nonce");
    assert_ne!(headers["dpop-nonce"].to_str().unwrap(), nonce);
}

#[tokio::test]
async fn a_code_bound_with_dpop_jkt_and_a_client_registered_for_dpop_need_the_key() {
    let app = spawn_app().await;
    let (a, b) = (key(SigningAlg::ES256), key(SigningAlg::ES256));
    let jkt = thumbprint(&a.public_jwk()).unwrap();
    let (code, verifier) = spa_code(&app, &[("dpop_jkt", &jkt)]).await;
    let form = exchange_form(&code, &verifier);
    let (_, body, _) = token_with(&app, &form, None, None).await;
    assert_reason(&body, "dpop_proof_missing", "invalid_request");
    let (_, body, _) = token_with(&app, &form, None, Some(&proof(&app, &b, "POST", "/token", None))).await;
    assert_reason(&body, "dpop_key_mismatch", "invalid_grant");
    let (status, tokens, _) = token_with(&app, &form, None, Some(&proof(&app, &a, "POST", "/token", None))).await;
    assert_eq!(status, StatusCode::OK, "the refusals did not use the code up: {tokens:#}");
    // A dpop_jkt that is no thumbprint is refused at /authorize.
    let p = pkce();
    let mut params = auth_params(SPA, SPA_REDIRECT, "openid", &p);
    params.push(("dpop_jkt", "not-a-thumbprint"));
    let cb = Callback::parse(&location(&app.authorize(&browser(), &params).await));
    assert_eq!(cb.get("error"), Some("invalid_request"));

    // A client registered for DPoP cannot do without it.
    let mut c = app.store.client(SERVICE).await.unwrap().unwrap();
    app.store.remove_client(SERVICE, 0).await.unwrap();
    c.require_dpop = true;
    app.store.insert_client(&c).await.unwrap();
    let (status, body, _) = token_with(&app, &[("grant_type", "client_credentials")], Some(SERVICE), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "dpop_proof_missing", "invalid_request");
    assert_eq!(body["facts"]["client_id"], SERVICE);
}

#[tokio::test]
async fn a_proof_sent_with_a_pushed_request_binds_its_code() {
    let app = spawn_app().await;
    let (a, b) = (key(SigningAlg::ES256), key(SigningAlg::ES256));
    let p = pkce();
    let params = auth_params(SPA, SPA_REDIRECT, "openid offline_access", &p);
    let push = |dpop: String, extra: Option<(&'static str, String)>| {
        let mut form: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        form.extend(extra.map(|(k, v)| (k.to_string(), v)));
        reqwest::Client::new().post(app.url("/par")).header("DPoP", dpop).form(&form).send()
    };
    // A dpop_jkt beside a proof by another key is refused.
    let other = thumbprint(&b.public_jwk()).unwrap();
    let r = push(proof(&app, &a, "POST", "/par", None), Some(("dpop_jkt", other))).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_reason(&r.json().await.unwrap(), "dpop_key_mismatch", "invalid_grant");
    // A proof for /token is not one for /par.
    let r = push(proof(&app, &a, "POST", "/token", None), None).await.unwrap();
    assert_reason(&r.json().await.unwrap(), "dpop_proof_wrong_target", "invalid_dpop_proof");

    let r = push(proof(&app, &a, "POST", "/par", None), None).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let pushed: Value = r.json().await.unwrap();
    let uri = pushed["request_uri"].as_str().unwrap();
    let code = app.authorize_through(&[("client_id", SPA), ("request_uri", uri)]).await.code();
    let form = exchange_form(&code, &p.verifier);
    let (_, body, _) = token_with(&app, &form, None, Some(&proof(&app, &b, "POST", "/token", None))).await;
    assert_reason(&body, "dpop_key_mismatch", "invalid_grant");
    let (status, tokens, _) = token_with(&app, &form, None, Some(&proof(&app, &a, "POST", "/token", None))).await;
    assert_eq!(status, StatusCode::OK, "{tokens:#}");
    assert_eq!(tokens["token_type"], "DPoP");
}
