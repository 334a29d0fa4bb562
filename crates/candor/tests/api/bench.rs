//! `candor bench` against a running Candor: every scenario completes without errors through
//! Candor's own login and consent forms, and a misconfiguration stops it with the reason.

use crate::helpers::*;
use serde_json::Value;
use std::process::Command;

async fn bench(app: &TestApp, client: &str, args: &[&str]) -> (bool, Value, String) {
    let base = app.base.clone();
    let secret = app.secret(client);
    let client = client.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_candor"))
            .args(["bench", "--json", "--issuer", &base, "--client-id", &client])
            .args(["-c", "3", "-d", "0.6", "--warmup", "0.1", "--username", USER])
            .args(&args)
            .env("CANDOR_BENCH_CLIENT_SECRET", &secret)
            .env("CANDOR_BENCH_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.success(), report, String::from_utf8_lossy(&out.stderr).into_owned())
    })
    .await
    .unwrap()
}

fn assert_clean(report: &Value, scenario: &str, min_requests_per_op: f64) {
    assert_eq!(report["scenario"], scenario, "{report}");
    assert!(report["ok"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    let latency = &report["latency"];
    assert!(latency["p50_ms"].as_f64().unwrap() <= latency["p99_ms"].as_f64().unwrap(), "{report}");
    assert!(latency["p99_ms"].as_f64().unwrap() <= latency["max_ms"].as_f64().unwrap(), "{report}");
    assert!(report["http_requests_per_op"].as_f64().unwrap() >= min_requests_per_op, "{report}");
}

#[tokio::test]
async fn every_scenario_runs_clean_against_candor() {
    let app = spawn_app().await;
    let (ok, r, err) = bench(&app, SERVICE, &["-s", "client-credentials", "--scope", "api.read"]).await;
    assert!(ok, "{err}");
    assert_clean(&r, "client-credentials", 1.0);
    // The round trip: authorize, the login form, the consent form, the redirect, the token exchange.
    let flow = ["--redirect-uri", WEB_REDIRECT, "--flow-scope", "openid profile offline_access"];
    let (ok, r, err) = bench(&app, WEB, &[&["-s", "code"][..], &flow].concat()).await;
    assert!(ok, "{err}");
    assert_clean(&r, "code", 3.0);
    // Signed-in users: after a worker's first flow its session and the remembered consent let the
    // authorization request straight through: authorize (redirect with the code) and the exchange.
    let (ok, r, err) = bench(&app, WEB, &[&["-s", "code-sso"][..], &flow].concat()).await;
    assert!(ok, "{err}");
    assert_clean(&r, "code-sso", 2.0);
    assert!(r["http_requests_per_op"].as_f64().unwrap() < 3.0, "no login form after the first flow: {r}");
    for scenario in ["refresh", "userinfo", "introspection"] {
        let (ok, r, err) = bench(&app, WEB, &[&["-s", scenario][..], &flow].concat()).await;
        assert!(ok, "{scenario}: {err}");
        assert_clean(&r, scenario, 1.0);
    }
}

#[tokio::test]
async fn a_misconfigured_run_stops_at_once_with_the_providers_answer() {
    let app = spawn_app().await;
    // A client that may not use the grant: the first request fails, and the run says why.
    let (ok, _, err) = bench(&app, WEB, &["-s", "client-credentials"]).await;
    assert!(!ok);
    assert!(err.contains("unauthorized_client"), "{err}");
    // A wrong password: the login form comes back instead of a redirect.
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_candor"))
            .args(["bench", "-s", "code", "--issuer", &base, "--client-id", WEB, "--redirect-uri", WEB_REDIRECT])
            .args(["--username", USER, "-d", "0.2"])
            .env("CANDOR_BENCH_PASSWORD", "wrong")
            .env("CANDOR_BENCH_CLIENT_SECRET", "irrelevant")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("authorize: HTTP 401"), "{err}");
    // A public client may not introspect: the run stops with the provider's answer.
    let (ok, _, err) = bench(&app, SPA, &["-s", "introspection", "--redirect-uri", SPA_REDIRECT]).await;
    assert!(!ok);
    assert!(err.contains("invalid_client") || err.contains("introspection_client_not_confidential"), "{err}");
}

#[tokio::test]
async fn the_device_scenario_drives_the_verification_page_and_collects_the_tokens() {
    use candor_core::model::{AuthMethod, GrantType};
    use candor_core::tokens::{Secret, SecretKind};
    let mut app = spawn_app().await;
    let secret = Secret::generate(SecretKind::ClientSecret).unwrap();
    let tv = client("tv", AuthMethod::ClientSecretBasic, &[], &[GrantType::DeviceCode], Some(&secret));
    app.store.insert_client(&tv).await.unwrap();
    app.secrets.insert("tv", secret.value);
    // The device request, the verification page (code filled in), sign-in, confirmation, the
    // result page, and the poll.
    let (ok, r, err) = bench(&app, "tv", &["-s", "device", "--flow-scope", "openid"]).await;
    assert!(ok, "{err}");
    assert_clean(&r, "device", 6.0);
    // Every round trip approved exactly one device, and each was redeemed once.
    let approved = app.sql_count("SELECT COUNT(*) FROM device_codes WHERE redeemed_at IS NOT NULL", &[]).await;
    assert!(approved >= r["ok"].as_i64().unwrap(), "{approved} redeemed for {r}");
}
