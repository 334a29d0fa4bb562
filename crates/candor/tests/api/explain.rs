//! Audit, explanations, the admin API, the client's own view, metrics, sweeping, and logs.

use crate::helpers::*;
use candor_core::store::SweepPolicy;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn every_response_carries_a_trace_id_and_successes_are_audited_too() {
    let app = spawn_app().await;
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(SERVICE, Some(app.secret(SERVICE)))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let trace = r.headers()["candor-trace-id"].to_str().unwrap().to_string();
    let e = app.explain(&trace).await;
    assert_eq!(e["outcome"], "succeeded");
    assert_eq!(e["client_id"], SERVICE);
    assert_eq!(e["grant_type"], "client_credentials");
    for path in ["/.well-known/openid-configuration", "/jwks.json", "/userinfo", "/authorize"] {
        let r = reqwest::get(app.url(path)).await.unwrap();
        assert!(r.headers().get("candor-trace-id").is_some(), "{path}");
    }
}

#[tokio::test]
async fn the_admin_api_needs_the_admin_token() {
    let app = spawn_app().await;
    let (_, body, _) = app.token(&[("grant_type", "nope")], Some(WEB)).await;
    let url = app.url(&format!("/admin/traces/{}", body["trace_id"].as_str().unwrap()));
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = reqwest::Client::new().get(&url).bearer_auth("wrong-token-wrong-token-wrong-token").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = reqwest::Client::new().get(&url).basic_auth("admin", Some(ADMIN_TOKEN)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::Client::new().get(app.url("/admin/traces/unknown")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn authorization_refusals_are_explained_too() {
    let app = spawn_app().await;
    let p = pkce();
    let r = app.authorize(&browser(), &auth_params(WEB, "https://evil.example/cb", "openid", &p)).await;
    let trace = r.headers()["candor-trace-id"].to_str().unwrap().to_string();
    let e = app.explain(&trace).await;
    assert_eq!(e["reason"], "redirect_uri_not_registered");
    assert_eq!(e["facts"]["received"], "https://evil.example/cb");
    assert!(!e["fix"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_client_reads_the_explanations_of_its_own_requests_only() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_SLASH_REDIRECT, "openid").await;
    let (_, body) = app.exchange(&cb.code(), &p.verifier).await;
    let trace = body["trace_id"].as_str().unwrap();
    let ask = |client: &'static str| {
        let secret = app.secret(client);
        let url = app.url("/explain");
        let trace = trace.to_string();
        async move {
            reqwest::Client::new()
                .post(url)
                .basic_auth(client, Some(secret))
                .form(&[("trace_id", trace)])
                .send()
                .await
                .unwrap()
        }
    };
    let r = ask(WEB).await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["reason"], "redirect_uri_mismatch");
    assert_eq!(e["facts"]["expected"], WEB_SLASH_REDIRECT);
    assert!(e["facts"].get("grant_id").is_none(), "internal facts stay internal");
    assert_eq!(ask(ES).await.status(), 404, "another client's trace is not found");
    let r = reqwest::Client::new().post(app.url("/explain")).form(&[("trace_id", trace)]).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_rejections_page_lists_refusals_by_client_and_reason() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.token(&[("grant_type", "authorization_code"), ("code", "x")], Some(SERVICE)).await;
    }
    let r = reqwest::Client::new()
        .get(app.url("/admin/rejections"))
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("grant_type_not_allowed_for_client") && page.contains(SERVICE), "{page}");
    assert!(page.contains(r#"<td class="num">3</td>"#), "{page}");
    let r = reqwest::Client::new()
        .get(app.url("/admin/rejections?client=nobody"))
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("No refusals."));
}

#[tokio::test]
async fn metrics_count_requests_outcomes_and_reasons() {
    let app = spawn_app().await;
    app.token(&[("grant_type", "client_credentials")], Some(SERVICE)).await;
    app.token(&[("grant_type", "nope")], Some(SERVICE)).await;
    let text = reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"candor_requests_total{endpoint="/token",outcome="ok"} 1"#), "{text}");
    assert!(text.contains(r#"candor_requests_total{endpoint="/token",outcome="refused"} 1"#), "{text}");
    assert!(text.contains(r#"candor_rejections_total{endpoint="/token",reason="grant_type_unsupported"} 1"#), "{text}");
    assert!(text.contains("candor_request_duration_seconds_bucket"), "{text}");
}

#[tokio::test]
async fn tombstones_keep_diagnoses_precise_until_their_retention_ends() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, "openid").await;
    assert_eq!(app.exchange(&cb.code(), &p.verifier).await.0, 200);
    let now = candor_core::clock::Clock::now(&app.clock);
    let retention = app.state.settings.tombstone_retention;
    let swept = app
        .store
        .sweep(&SweepPolicy::new(now + retention - 10, retention, app.state.settings.audit_retention, 1000))
        .await
        .unwrap();
    assert_eq!(swept.codes, 0);
    assert_eq!(app.exchange(&cb.code(), &p.verifier).await.1["reason"], "code_already_redeemed");
    let swept = app
        .store
        .sweep(&SweepPolicy::new(now + retention + 120, retention, app.state.settings.audit_retention, 1000))
        .await
        .unwrap();
    assert_eq!(swept.codes, 1);
    app.clock.advance(retention + 120);
    assert_eq!(app.exchange(&cb.code(), &p.verifier).await.1["reason"], "code_unknown");
}

#[tokio::test]
async fn sweeping_is_bounded_by_its_batch_size() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.token(&[("grant_type", "client_credentials")], Some(SERVICE)).await;
    }
    let later = candor_core::clock::Clock::now(&app.clock) + 3600 + app.state.settings.tombstone_retention + 10;
    let first = app.store.sweep(&SweepPolicy::new(later, app.state.settings.tombstone_retention, 1, 2)).await.unwrap();
    assert_eq!(first.access_tokens, 2);
    let second = app.store.sweep(&SweepPolicy::new(later, app.state.settings.tombstone_retention, 1, 2)).await.unwrap();
    assert_eq!(second.access_tokens, 1);
}

/// The sweeper keeps going while its batches come back full (a sustained load makes rows die
/// faster than any fixed number of batches per minute removes them), within its time budget.
#[tokio::test]
async fn the_sweeper_works_through_a_backlog_within_its_budget() {
    let app = spawn_app().await;
    for _ in 0..25 {
        app.token(&[("grant_type", "client_credentials")], Some(SERVICE)).await;
    }
    app.clock.advance(3600 + app.state.settings.tombstone_retention + 10);
    // No time budget: one round of batches of 2.
    let once = candor_server::sweep_backlog(&app.state, 2, Duration::ZERO, Duration::ZERO).await.unwrap();
    assert_eq!(once.access_tokens, 2);
    // Thirteen rounds of 2 for the 23 left, more than the ten a tick used to allow.
    let all = candor_server::sweep_backlog(&app.state, 2, Duration::ZERO, Duration::from_secs(30)).await.unwrap();
    assert_eq!(all.access_tokens, 23);
    let none = candor_server::sweep_backlog(&app.state, 2, Duration::ZERO, Duration::from_secs(30)).await.unwrap();
    assert_eq!(none.total(), 0);
}

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let app = spawn_app().await;
    let (cb, p) = app.code_for(WEB, WEB_REDIRECT, "openid offline_access").await;
    let code = cb.code();
    let (_, tokens) = app.exchange(&code, &p.verifier).await;
    let (_, replay) = app.exchange(&code, &p.verifier).await;
    assert_eq!(replay["reason"], "code_already_redeemed");
    let (_, _, _) = app
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
            Some(WEB),
        )
        .await;
    app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    let wrong = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(WEB, Some("cds_the_wrong_secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // What refusals answer: their bodies and headers, for a reused code, a wrong secret, and
    // tokens that are the real ones with one character more.
    let mut answers = vec![replay.to_string(), format!("{:?}", wrong.headers()), wrong.text().await.unwrap()];
    let altered = |t: &str| format!("{}x", tokens[t].as_str().unwrap());
    let (_, bad_refresh, headers) =
        app.token(&[("grant_type", "refresh_token"), ("refresh_token", &altered("refresh_token"))], Some(WEB)).await;
    assert_eq!(bad_refresh["error"], "invalid_grant");
    answers.extend([bad_refresh.to_string(), format!("{headers:?}")]);
    let bad_bearer = app.userinfo(&altered("access_token")).await;
    assert_eq!(bad_bearer.status(), 401);
    answers.extend([format!("{:?}", bad_bearer.headers()), bad_bearer.text().await.unwrap()]);
    // And what the audit log keeps of every request above.
    let audit = app
        .sql_texts(
            "SELECT trace_id || ' ' || endpoint || ' ' || COALESCE(client_id, '') || ' ' || COALESCE(grant_type, '')
             || ' ' || COALESCE(reason, '') || ' ' || facts || ' ' || COALESCE(grant_id, '') FROM audit",
            &[],
        )
        .await;
    assert!(audit.len() >= 5, "{audit:?}");
    answers.extend(audit.into_iter().flatten().flatten());
    let answers = answers.join("\n");
    let text = String::from_utf8_lossy(&captured_logs().0.lock().unwrap()).into_owned();
    assert!(text.contains("token request refused") && text.contains("code_already_redeemed"), "the logs were captured");
    for (what, secret) in [
        ("client secret", app.secret(WEB)),
        ("wrong secret", "cds_the_wrong_secret".to_string()),
        ("password", PASSWORD.to_string()),
        ("code", code.clone()),
        ("verifier", p.verifier.clone()),
        ("access token", tokens["access_token"].as_str().unwrap().to_string()),
        ("refresh token", tokens["refresh_token"].as_str().unwrap().to_string()),
        ("admin token", ADMIN_TOKEN.to_string()),
    ] {
        assert!(!text.contains(&secret), "the {what} reached the logs");
        assert!(!answers.contains(&secret), "the {what} reached an answer or the audit log");
    }
}
