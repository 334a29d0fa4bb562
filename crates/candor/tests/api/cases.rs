//! The real-world failure reports behind Candor (shared/cases/), each ending in the right reason,
//! the facts, and a fix, both on the wire and in the explanation of its trace.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SCOPE: &str = "openid profile offline_access";

/// The explanation's fix, as one lowercase text.
async fn fix_of(app: &TestApp, body: &Value) -> String {
    let e = app.explain(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(e["reason"], body["reason"]);
    e["fix"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_lowercase()).collect::<Vec<_>>().join(" | ")
}

#[tokio::test]
async fn case_01_a_code_exchanged_90_seconds_late_is_code_expired_with_the_times() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(POST_CLIENT, WEB_REDIRECT, SCOPE).await;
    app.clock.advance(90);
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
    assert_eq!(s, StatusCode::BAD_REQUEST, "not 403 as some providers answer");
    assert_reason(&body, "code_expired", "invalid_grant");
    for fact in ["issued_at", "expired_at", "server_time"] {
        assert!(body["facts"][fact].is_string(), "{fact}");
    }
    let fix = fix_of(&app, &body).await;
    assert!(fix.contains("immediately") || fix.contains("right away"), "{fix}");
}

#[tokio::test]
async fn case_02_a_trailing_slash_difference_is_redirect_uri_mismatch_naming_it() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_SLASH_REDIRECT, SCOPE).await;
    let (_, body) = app.exchange(&cb.code(), &p.verifier).await;
    assert_reason(&body, "redirect_uri_mismatch", "invalid_grant");
    assert_eq!(body["facts"]["difference"], "trailing_slash");
    let fix = fix_of(&app, &body).await;
    assert!(fix.contains("identical") || fix.contains("same"), "{fix}");
}

#[tokio::test]
async fn case_03_a_code_with_the_fragment_kept_is_code_malformed_naming_the_suffix() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    let (_, body) = app.exchange(&format!("{}#_=_", cb.code()), &p.verifier).await;
    assert_reason(&body, "code_malformed", "invalid_grant");
    assert_eq!(body["facts"]["defect"], "url_fragment");
    assert_eq!(body["facts"]["suffix"], "#_=_");
    let (_, body) = app.exchange(&format!("{}%23_%3D_", cb.code()), &p.verifier).await;
    assert_eq!(body["facts"]["defect"], "url_fragment");
    let fix = fix_of(&app, &body).await;
    assert!(fix.contains('#') || fix.contains("fragment"), "{fix}");
}

#[tokio::test]
async fn case_04_a_json_request_with_a_mangled_code_is_told_apart_from_an_unknown_code() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(POST_CLIENT, WEB_REDIRECT, SCOPE).await;
    let send = |code: String| {
        let app_url = app.url("/token");
        let secret = app.secret(POST_CLIENT);
        let verifier = p.verifier.clone();
        async move {
            let r = reqwest::Client::new()
                .post(app_url)
                .json(&json!({"grant_type": "authorization_code", "client_id": POST_CLIENT, "client_secret": secret,
                              "code": code, "redirect_uri": WEB_REDIRECT, "code_verifier": verifier}))
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    let code = cb.code();
    let truncated = send(code[..code.len() - 5].to_string()).await;
    assert_reason(&truncated, "code_malformed", "invalid_grant");
    assert_eq!(truncated["facts"]["defect"], "truncated");
    assert_eq!(truncated["facts"]["body_encoding"], "json");
    let e = app.explain(truncated["trace_id"].as_str().unwrap()).await;
    assert_eq!(e["reason"], "code_malformed");
    let never_issued =
        candor_core::tokens::Secret::generate(candor_core::tokens::SecretKind::AuthorizationCode).unwrap().value;
    assert_reason(&send(never_issued).await, "code_unknown", "invalid_grant");
    let ok = send(code).await;
    assert!(ok["access_token"].is_string(), "the code taken by hand works: {ok}");
}

#[tokio::test]
async fn case_05_the_same_code_twice_is_code_already_redeemed_with_when_and_by_which_trace() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    let r = app.exchange_as(WEB, &app.secret(WEB), &cb.code(), &p.verifier).await;
    let first_trace = r.headers()["candor-trace-id"].to_str().unwrap().to_string();
    assert_eq!(r.status(), 200);
    let (_, body) = app.exchange(&cb.code(), &p.verifier).await;
    assert_reason(&body, "code_already_redeemed", "invalid_grant");
    assert_eq!(body["facts"]["redeemed_by_trace"], first_trace);
    assert_eq!(body["facts"]["grant_revoked"], true);
    let e = app.explain(body["trace_id"].as_str().unwrap()).await;
    let timeline = e["timeline"].to_string();
    assert!(
        timeline.contains("authorization code issued") && timeline.contains("authorization code redeemed"),
        "{timeline}"
    );
    assert!(timeline.contains(&first_trace), "{timeline}");
    assert!(timeline.contains("revoked"), "{timeline}");
    let fix = fix_of(&app, &body).await;
    assert!(fix.contains("once") || fix.contains("retry"), "{fix}");
}

#[tokio::test]
async fn case_06_a_regenerated_verifier_is_pkce_verifier_mismatch_and_a_mixed_one_is_recognised() {
    let app = spawn_app().await;
    let (cb, _) = app.code_for(SPA, SPA_REDIRECT, SCOPE).await;
    let (_, body, _) = app
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", SPA),
                ("code", &cb.code()),
                ("redirect_uri", SPA_REDIRECT),
                ("code_verifier", &pkce().verifier),
            ],
            None,
        )
        .await;
    assert_reason(&body, "pkce_verifier_mismatch", "invalid_grant");
    assert!(body["facts"].get("verifier_matches_other_request").is_none());
    let (first, _) = app.code_for(SPA, SPA_REDIRECT, SCOPE).await;
    let (_, p2) = app.code_for(SPA, SPA_REDIRECT, SCOPE).await;
    let (_, body, _) = app
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", SPA),
                ("code", &first.code()),
                ("redirect_uri", SPA_REDIRECT),
                ("code_verifier", &p2.verifier),
            ],
            None,
        )
        .await;
    assert_eq!(body["facts"]["verifier_matches_other_request"], true);
    let fix = fix_of(&app, &body).await;
    assert!(fix.contains("verifier"), "{fix}");
}

#[tokio::test]
async fn case_07_another_clients_code_and_a_grant_the_client_may_not_use_are_named() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, SCOPE).await;
    let (_, body, _) = app
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
    assert_reason(&body, "code_issued_to_other_client", "invalid_grant");
    assert!(!body.to_string().contains(&app.secret(WEB)) && !body.to_string().contains(&app.secret(ES)));
    let (_, body, _) = app.token(&[("grant_type", "authorization_code"), ("code", &cb.code())], Some(SERVICE)).await;
    assert_reason(&body, "grant_type_not_allowed_for_client", "unauthorized_client");
    let fix = fix_of(&app, &body).await;
    assert!(fix.contains("--grant") || fix.contains("enable"), "{fix}");
}

#[tokio::test]
async fn case_08_a_replayed_rotated_refresh_token_is_refresh_token_reused_and_the_family_is_revoked() {
    let app = spawn_app().await;
    let first = app.tokens(SCOPE).await;
    let old = first["refresh_token"].as_str().unwrap();
    let (_, second, _) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", old)], Some(WEB)).await;
    assert!(second["refresh_token"].is_string());
    let (_, body, _) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", old)], Some(WEB)).await;
    assert_reason(&body, "refresh_token_reused", "invalid_grant");
    assert!(body["facts"]["rotated_at"].is_string());
    assert_eq!(body["facts"]["family_revoked"], true);
    let e = app.explain(body["trace_id"].as_str().unwrap()).await;
    assert!(e["timeline"].to_string().contains("refresh token rotated"));
    let fix = fix_of(&app, &body).await;
    assert!(fix.contains("store the new refresh token") || fix.contains("new refresh token"), "{fix}");
}
