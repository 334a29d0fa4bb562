//! `candor flow` end to end against a running Candor, non-interactively.

use crate::helpers::*;
use std::process::Command;

/// Runs `candor flow --issuer <app> --client-id web <args>` off the runtime, with web's secret and
/// the demo user's password in the environment; returns whether every step passed, and its output.
async fn flow(app: &TestApp, args: &[&str]) -> (bool, String) {
    flow_as(app, WEB, args).await
}

/// `flow` as the client `client_id` (with its secret, if it has one).
async fn flow_as(app: &TestApp, client_id: &str, args: &[&str]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_candor"));
    command.args(["flow", "--issuer", &app.base, "--client-id", client_id]).args(args);
    let secret = app.secret(client_id);
    if !secret.is_empty() {
        command.env("CANDOR_FLOW_CLIENT_SECRET", secret);
    }
    run(command).await
}

/// Runs `candor flow` with the demo user's password in the environment, off the runtime.
async fn run(mut command: Command) -> (bool, String) {
    command.env("CANDOR_FLOW_LOGIN_PASSWORD", PASSWORD);
    tokio::task::spawn_blocking(move || {
        let out = command.output().unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn flow_completes_every_step_against_candor_and_masks_secrets() {
    let app = spawn_app().await;
    let (ok, text) = flow(
        &app,
        &[
            "--scope",
            "openid profile offline_access",
            "--refresh",
            "--redirect-uri",
            WEB_REDIRECT,
            "--login-user",
            USER,
        ],
    )
    .await;
    assert!(ok, "{text}");
    for expected in [
        "ok   discovery",
        "ok   callback state",
        "ok   callback iss (RFC 9207)",
        "ok   code exchange: HTTP 200",
        "ok   ID token: signature (JWKS)",
        "ok   userinfo: HTTP 200",
        "ok   refresh rotation: a new refresh token",
        "ok   refreshed ID token",
        "every step passed",
    ] {
        assert!(text.contains(expected), "missing {expected:?}:\n{text}");
    }
    assert!(!text.contains(&app.secret(WEB)), "the client secret is never printed");
}

#[tokio::test]
async fn a_refused_exchange_shows_the_providers_answer_causes_and_candors_explanation() {
    let app = spawn_app().await;
    // A pasted callback whose code is not the one issued: the exchange is refused.
    let fake = candor_core::tokens::Secret::generate(candor_core::tokens::SecretKind::AuthorizationCode).unwrap().value;
    let callback = format!("{WEB_REDIRECT}?code={fake}&state=wrong");
    let (ok, text) = flow(&app, &["--redirect-uri", WEB_REDIRECT, "--callback-url", &callback]).await;
    assert!(!ok);
    assert!(text.contains("FAIL callback state"), "{text}");
    assert!(text.contains("FAIL code exchange: HTTP 400") && text.contains("invalid_grant"), "{text}");
    assert!(text.contains("likely: the code expired"), "{text}");
    assert!(text.contains("Candor explains trace") && text.contains("fix:"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loopback_listener_receives_the_callback_from_the_browser() {
    use std::io::{BufRead, BufReader};
    let app = spawn_app().await;
    // A public client registered for http://127.0.0.1/callback: any port (RFC 8252 §7.3).
    let mut child = Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(["flow", "--issuer", &app.base, "--client-id", SPA, "--scope", "openid", "--wait", "30"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let authorize_url = loop {
        let line = tokio::task::block_in_place(|| rx.recv_timeout(std::time::Duration::from_secs(30)))
            .expect("the flow prints the authorize URL");
        seen.push(line.clone());
        if let Some(url) = line.trim().strip_prefix(&format!("{}/authorize?", app.base)) {
            break format!("{}/authorize?{url}", app.base);
        }
    };
    // Play the browser: log in, consent, and follow the redirect to the flow's listener.
    let b = browser();
    let r = b.get(&authorize_url).send().await.unwrap();
    let cb = app.complete(&b, r).await;
    assert!(cb.url.starts_with("http://127.0.0.1:") && cb.url.contains("/callback?code="), "{}", cb.url);
    let page = reqwest::get(&cb.url).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("You can close this window"));
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(2)) {
        seen.push(line);
    }
    let text = seen.join("\n");
    assert!(status.success(), "{text}");
    assert!(text.contains("ok   ID token") && text.contains("every step passed"), "{text}");
}

#[tokio::test]
async fn flow_with_a_resource_checks_the_jwt_access_token_as_the_resource_would() {
    use candor_core::model::{Resource, SigningAlg, TokenFormat};
    let app = spawn_app().await;
    let api = "https://api.flow.example/";
    app.store
        .insert_resource(&Resource {
            id: api.into(),
            name: "API".into(),
            scopes: vec!["offline_access".into()],
            access_token_format: TokenFormat::Jwt,
            access_token_lifetime: None,
            signing_alg: SigningAlg::EdDSA,
            created_at: 0,
        })
        .await
        .unwrap();
    let mut client = app.store.client(WEB).await.unwrap().unwrap();
    app.store.remove_client(WEB, 0).await.unwrap();
    client.resources = vec![api.into()];
    app.store.insert_client(&client).await.unwrap();
    let run = |resource: &'static str| {
        let app = &app;
        async move {
            let args = ["--scope", "openid offline_access", "--redirect-uri", WEB_REDIRECT, "--login-user", USER];
            flow(app, &[&args[..], &["--resource", resource, "--refresh"]].concat()).await
        }
    };
    let (ok, text) = run(api).await;
    assert!(ok, "{text}");
    for expected in [
        "PKCE S256, state, nonce and resource (RFC 8707)",
        "resource=https://api.flow.example/",
        "ok   access token (RFC 9068): typ at+jwt, signature (JWKS), iss, aud \"https://api.flow.example/\"",
        "userinfo not called",
        "ok   refresh rotation",
    ] {
        assert!(text.contains(expected), "missing {expected:?}:\n{text}");
    }
    // A resource the client is not registered for: the callback carries invalid_target.
    let (ok, text) = run("https://elsewhere.example/").await;
    assert!(!ok && text.contains("error=invalid_target"), "{text}");
}

#[tokio::test]
async fn flow_with_dpop_binds_the_tokens_to_its_key_and_follows_the_nonce() {
    let app = spawn_app_with(|s| s.dpop_nonce = true, candor_server::Disclosure::Detailed).await;
    let (ok, text) = flow(
        &app,
        &[
            "--scope",
            "openid offline_access",
            "--redirect-uri",
            WEB_REDIRECT,
            "--login-user",
            USER,
            "--dpop",
            "--refresh",
        ],
    )
    .await;
    assert!(ok, "{text}");
    for expected in [
        "DPoP: a fresh ES256 key, thumbprint (jkt)",
        "code exchange: the provider asked for a DPoP nonce (use_dpop_nonce): retried with it",
        "ok   DPoP binding: token_type DPoP",
        "ok   userinfo: HTTP 200",
        "ok   refresh rotation",
        "every step passed",
    ] {
        assert!(text.contains(expected), "missing {expected:?}:\n{text}");
    }
}

#[tokio::test]
async fn flow_runs_the_device_grant_driving_the_verification_page_while_it_polls() {
    use candor_core::model::{AuthMethod, GrantType};
    let app = spawn_app_with(|s| s.device_poll_interval = 1, candor_server::Disclosure::Detailed).await;
    let tv = client("tv", AuthMethod::None, &[], &[GrantType::DeviceCode, GrantType::RefreshToken], None);
    app.store.insert_client(&tv).await.unwrap();
    let args = ["--device", "--scope", "openid profile offline_access", "--refresh", "--login-user", USER];
    let (ok, text) = flow_as(&app, "tv", &args).await;
    assert!(ok, "{text}");
    for expected in [
        "ok   device authorization: user code ",
        "poll every 1 s",
        "the user opens http://127.0.0.1:",
        "ok   device code exchange: HTTP 200 after",
        "ok   verification page: code entered, signed in, approved (/device?result=approved)",
        "ok   ID token: signature (JWKS), iss, aud, exp, iat, at_hash valid",
        "ok   userinfo: HTTP 200",
        "ok   refresh rotation: a new refresh token",
        "every step passed",
    ] {
        assert!(text.contains(expected), "missing {expected:?}:\n{text}");
    }
    // The device code is never printed whole.
    assert!(!text.lines().any(|l| l.contains("cdv_") && !l.contains('…')), "{text}");

    // A client not registered for the grant: the refusal and Candor's explanation.
    let (ok, text) = flow(&app, &["--device", "--scope", "openid"]).await;
    assert!(!ok);
    assert!(text.contains("FAIL device authorization: HTTP 400"), "{text}");
    assert!(text.contains("grant_type_not_allowed_for_client") && text.contains("Candor explains trace"), "{text}");
}

#[tokio::test]
async fn flow_ends_with_rp_initiated_logout_and_names_a_refused_one() {
    let app = spawn_app().await;
    let mut web = app.store.client(WEB).await.unwrap().unwrap();
    app.store.remove_client(WEB, 0).await.unwrap();
    web.logout.post_logout_redirect_uris = vec!["https://app.example.com/bye".into()];
    app.store.insert_client(&web).await.unwrap();
    let args = |bye: &'static str| {
        vec!["--redirect-uri", WEB_REDIRECT, "--login-user", USER, "--logout", "--post-logout-redirect-uri", bye]
    };
    let (ok, text) = flow(&app, &args("https://app.example.com/bye")).await;
    assert!(ok, "{text}");
    assert!(text.contains("ok   logout: HTTP 302 to https://app.example.com/bye with the state sent"), "{text}");
    assert_eq!(app.sql_count("SELECT COUNT(*) FROM sessions", &[]).await, 0);

    let (ok, text) = flow(&app, &args("https://app.example.com/bye/")).await;
    assert!(!ok, "{text}");
    assert!(text.contains("FAIL logout: HTTP 400: refused: post_logout_redirect_uri_not_registered"), "{text}");
    assert!(text.contains("register the post-logout redirect URI"), "{text}");
}

#[tokio::test]
async fn flow_registers_a_client_of_its_own_and_removes_it_at_the_end() {
    let app = spawn_app_with(|s| s.registration.enabled = true, candor_server::Disclosure::Detailed).await;
    let flow_registering = |base: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_candor"));
        command.args(["flow", "--issuer", base, "--register", "--redirect-uri", WEB_REDIRECT, "--login-user", USER]);
        command.args(["--scope", "openid offline_access", "--refresh"]);
        command
    };
    let (ok, text) = run(flow_registering(&app.base)).await;
    assert!(ok, "{text}");
    for expected in [
        "ok   registration: HTTP 201: client_id",
        "ok   code exchange: HTTP 200",
        "ok   refresh rotation",
        "ok   unregistration",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    assert_eq!(app.sql_count("SELECT COUNT(*) FROM clients", &[]).await, 8, "its client is gone again");
    assert!(!text.contains("cds_") || text.lines().all(|l| !l.contains("cds_") || l.contains('…')), "{text}");

    // A provider without registration: the step says so.
    let off = spawn_app().await;
    let (ok, text) = run(flow_registering(&off.base)).await;
    assert!(!ok && text.contains("FAIL registration: the discovery document has no registration_endpoint"), "{text}");
}
