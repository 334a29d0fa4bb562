//! The authorization code grant: every rule, one test each.

use crate::helpers::*;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;

const SCOPE: &str = "openid profile email offline_access";

#[tokio::test]
async fn a_full_flow_issues_access_refresh_and_a_signed_id_token() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    assert_eq!(cb.get("state"), Some("state-123"));
    assert_eq!(cb.get("iss"), Some(app.base.as_str()), "RFC 9207 iss in the response");
    let code = cb.code();
    assert!(code.len() >= 43, "at least 128 bits");

    let (status, body, headers) = app
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", &p.verifier),
            ],
            Some(WEB),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["refresh_token"].is_string());
    let claims = verify_jwt(&app, body["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["aud"], WEB);
    assert_eq!(claims["sub"], app.user_id);
    assert_eq!(claims["nonce"], "nonce-456");
    assert!(claims["auth_time"].is_i64());
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    let at = body["access_token"].as_str().unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, at.as_bytes());
    let at_hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
    assert_eq!(claims["at_hash"], at_hash);
}

#[tokio::test]
async fn codes_and_tokens_are_stored_only_as_hashes() {
    let app = spawn_app().await;
    let body = app.tokens(SCOPE).await;
    let dump = app
        .sql_texts(
            "SELECT hash FROM codes UNION ALL SELECT hash FROM access_tokens UNION ALL SELECT hash FROM refresh_tokens UNION ALL SELECT secret_hash FROM clients WHERE secret_hash IS NOT NULL",
            &[],
        )
        .await;
    let dump: Vec<String> = dump.into_iter().map(|row| row[0].clone().unwrap()).collect();
    let issued = [body["access_token"].as_str().unwrap(), body["refresh_token"].as_str().unwrap()];
    for h in &dump {
        // The time of issue (12 hex characters) leads the SHA-256 digest (64) of codes and tokens;
        // the client secret was created the same way.
        assert_eq!(h.len(), 12 + 64, "{h}");
        for value in issued {
            // The value's 256 random bits (after its prefix and time) are stored nowhere.
            assert!(!h.contains(&value[12..55]));
        }
    }
    for value in issued {
        assert!(dump.contains(&candor_core::tokens::hash_secret(value)));
    }
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_the_tokens_issued_from_it() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    let (s, first) = app.exchange(&cb.code(), &p.verifier).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.userinfo(first["access_token"].as_str().unwrap()).await.status(), 200);

    let (s, second) = app.exchange(&cb.code(), &p.verifier).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_reason(&second, "code_already_redeemed", "invalid_grant");
    assert_eq!(second["facts"]["grant_revoked"], true);
    assert_eq!(second["facts"]["tokens_revoked_now"], 2);
    assert!(second["facts"]["redeemed_by_trace"].as_str().unwrap().len() >= 16);

    let r = app.userinfo(first["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "access_token_revoked");
    let (_, refreshed, _) = app
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())],
            Some(WEB),
        )
        .await;
    assert_reason(&refreshed, "refresh_token_revoked", "invalid_grant");
}

#[tokio::test]
async fn concurrent_redemptions_of_one_code_yield_exactly_one_success() {
    let app = std::sync::Arc::new(spawn_app().await);
    for _round in 0..5 {
        let (cb, p) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
        let code = cb.code();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (app, code, v) = (app.clone(), code.clone(), p.verifier.clone());
            tasks.push(tokio::spawn(async move { app.exchange(&code, &v).await }));
        }
        let mut wins = 0;
        for t in tasks {
            let (s, body) = t.await.unwrap();
            if s == StatusCode::OK {
                wins += 1;
            } else {
                assert_reason(&body, "code_already_redeemed", "invalid_grant");
            }
        }
        assert_eq!(wins, 1, "exactly one redemption wins");
        let live = app
            .sql_count(
                "SELECT COUNT(*) FROM access_tokens a JOIN codes c ON a.grant_id = c.grant_id WHERE c.hash = $1 AND a.revoked_at IS NULL",
                &[&candor_core::tokens::hash_secret(&code)],
            )
            .await;
        assert_eq!(live, 0, "the losers' replays revoked the winner's tokens");
    }
}

#[tokio::test]
async fn an_expired_code_is_refused_with_its_times() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    app.clock.advance(90);
    let (s, body) = app.exchange(&cb.code(), &p.verifier).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_reason(&body, "code_expired", "invalid_grant");
    assert_eq!(body["facts"]["lifetime_seconds"], 60);
    assert!(body["facts"]["late_by_seconds"].as_i64().unwrap() >= 29);
    for k in ["issued_at", "expired_at", "server_time"] {
        assert!(body["facts"][k].as_str().unwrap().ends_with('Z'), "{k}");
    }
}

#[tokio::test]
async fn the_code_lifetime_is_configurable() {
    let app = spawn_app_with(|s| s.code_lifetime = 300, candor_server::Disclosure::Detailed).await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    app.clock.advance(120);
    assert_eq!(app.exchange(&cb.code(), &p.verifier).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_code_issued_to_another_client_is_refused_without_naming_secrets() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    let (s, body, _) = app
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &cb.code()),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", &p.verifier),
            ],
            Some(ES),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_reason(&body, "code_issued_to_other_client", "invalid_grant");
    let text = body.to_string();
    assert!(!text.contains(&app.secret(WEB)) && !text.contains(&app.secret(ES)));
    // The rightful client can still redeem it: another client's attempt does not burn the code.
    assert_eq!(app.exchange(&cb.code(), &p.verifier).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_redirect_uri_differing_by_a_trailing_slash_is_named() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_SLASH_REDIRECT, SCOPE).await;
    let (s, body) = app.exchange(&cb.code(), &p.verifier).await; // sends WEB_REDIRECT, without the slash
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_reason(&body, "redirect_uri_mismatch", "invalid_grant");
    assert_eq!(body["facts"]["difference"], "trailing_slash");
    assert_eq!(body["facts"]["expected"], WEB_SLASH_REDIRECT);
    assert_eq!(body["facts"]["received"], WEB_REDIRECT);
}

#[tokio::test]
async fn standard_disclosure_names_the_difference_but_not_the_stored_uri() {
    let app = spawn_app_with(|_| {}, candor_server::Disclosure::Standard).await;
    let (cb, p) = app.code_for(WEB, WEB_SLASH_REDIRECT, SCOPE).await;
    let (_, body) = app.exchange(&cb.code(), &p.verifier).await;
    assert_eq!(body["reason"], "redirect_uri_mismatch");
    assert!(body.get("facts").is_none());
    let d = body["error_description"].as_str().unwrap();
    assert!(d.contains("trailing_slash") && !d.contains("app.example.com"), "{d}");
}

#[tokio::test]
async fn a_redirect_uri_sent_to_authorize_is_required_at_the_token_endpoint() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    let (s, body, _) = app
        .token(&[("grant_type", "authorization_code"), ("code", &cb.code()), ("code_verifier", &p.verifier)], Some(WEB))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_reason(&body, "redirect_uri_missing_at_token", "invalid_grant");
}

#[tokio::test]
async fn pkce_verifier_rules_each_have_their_reason() {
    let app = spawn_app().await;
    let (cb, _) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    let code = cb.code();
    let (_, body, _) = app
        .token(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", WEB_REDIRECT)], Some(WEB))
        .await;
    assert_reason(&body, "pkce_verifier_missing", "invalid_request");
    let (_, body) = app.exchange(&code, "too-short").await;
    assert_reason(&body, "pkce_verifier_malformed", "invalid_request");
    let (_, body) = app.exchange(&code, &pkce().verifier).await;
    assert_reason(&body, "pkce_verifier_mismatch", "invalid_grant");
    assert_eq!(body["facts"]["code_challenge_method"], "S256");
}

#[tokio::test]
async fn a_verifier_belonging_to_another_pending_request_is_recognised() {
    let app = spawn_app().await;
    let (first, p1) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    let (_second, p2) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    let (_, body) = app.exchange(&first.code(), &p2.verifier).await;
    assert_reason(&body, "pkce_verifier_mismatch", "invalid_grant");
    assert_eq!(body["facts"]["verifier_matches_other_request"], true);
    assert_eq!(app.exchange(&first.code(), &p1.verifier).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_verifier_for_a_code_requested_without_challenge_is_refused() {
    let app = spawn_app().await;
    let cb = app
        .authorize_through(&[
            ("response_type", "code"),
            ("client_id", NO_PKCE),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("state", "s"),
        ])
        .await;
    let (s, body, _) = app
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &cb.code()),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", &pkce().verifier),
            ],
            Some(NO_PKCE),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_reason(&body, "pkce_verifier_unexpected", "invalid_grant");
}

#[tokio::test]
async fn plain_pkce_is_compared_literally_when_enabled_for_the_client() {
    let app = spawn_app().await;
    let p = pkce();
    // A challenge with no method is plain (RFC 7636 §4.3), never treated as S256.
    let cb = app
        .authorize_through(&[
            ("response_type", "code"),
            ("client_id", PLAIN),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("code_challenge", &p.verifier),
        ])
        .await;
    let (s, body, _) = app
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &cb.code()),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", &p.verifier),
            ],
            Some(PLAIN),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_code_carrying_the_url_fragment_is_diagnosed_as_such() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    for suffix in ["#_=_", "#"] {
        let (s, body) = app.exchange(&format!("{}{suffix}", cb.code()), &p.verifier).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_reason(&body, "code_malformed", "invalid_grant");
        assert_eq!(body["facts"]["defect"], "url_fragment");
        assert_eq!(body["facts"]["suffix"], suffix);
        assert_eq!(body["facts"]["issued_code_found"], true);
    }
    assert_eq!(app.exchange(&cb.code(), &p.verifier).await.0, StatusCode::OK, "the code itself was never burned");
}

#[tokio::test]
async fn a_code_never_issued_here_is_unknown() {
    let app = spawn_app().await;
    let fake = candor_core::tokens::Secret::generate(candor_core::tokens::SecretKind::AuthorizationCode).unwrap().value;
    let (_, body) = app.exchange(&fake, &pkce().verifier).await;
    assert_reason(&body, "code_unknown", "invalid_grant");
    let (_, body) = app.exchange("SplxlOBeZQQYbYS6WxSbIA", &pkce().verifier).await;
    assert_reason(&body, "code_malformed", "invalid_grant");
    assert_eq!(body["facts"]["defect"], "not_a_candor_value");
}

#[tokio::test]
async fn a_client_not_registered_for_the_grant_is_unauthorized_client() {
    let app = spawn_app().await;
    let (s, body, _) = app
        .token(&[("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", WEB_REDIRECT)], Some(SERVICE))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_reason(&body, "grant_type_not_allowed_for_client", "unauthorized_client");
    assert_eq!(body["facts"]["allowed"], "client_credentials");
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported_grant_type() {
    let app = spawn_app().await;
    let (_, body, _) = app.token(&[("grant_type", "authorization-code")], Some(WEB)).await;
    assert_reason(&body, "grant_type_unsupported", "unsupported_grant_type");
    assert_eq!(body["facts"]["did_you_mean"], "authorization_code");
}

#[tokio::test]
async fn a_json_body_is_accepted_and_recorded() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(POST_CLIENT, WEB_REDIRECT, SCOPE).await;
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .json(&json!({"grant_type": "authorization_code", "client_id": POST_CLIENT, "client_secret": app.secret(POST_CLIENT),
                      "code": cb.code(), "redirect_uri": WEB_REDIRECT, "code_verifier": p.verifier}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .json(&json!({"grant_type": "authorization_code", "client_id": POST_CLIENT, "client_secret": app.secret(POST_CLIENT),
                      "code": format!("{}junk", cb.code()), "redirect_uri": WEB_REDIRECT, "code_verifier": p.verifier}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "code_malformed");
    assert_eq!(body["facts"]["body_encoding"], "json");
}

#[tokio::test]
async fn duplicated_parameters_and_wrong_content_types_are_invalid_request() {
    let app = spawn_app().await;
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(WEB, Some(app.secret(WEB)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code&code=a&code=b")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_reason(&body, "parameter_duplicated", "invalid_request");
    assert_eq!(body["facts"]["parameter"], "code");
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_reason(&body, "content_type_unsupported", "invalid_request");
    let r = reqwest::Client::new().get(app.url("/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn a_disabled_user_gets_no_tokens_from_an_outstanding_code() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    app.store.set_disabled(&app.user_id, true).await.unwrap();
    let (_, body) = app.exchange(&cb.code(), &p.verifier).await;
    assert_reason(&body, "user_disabled", "invalid_grant");
}
