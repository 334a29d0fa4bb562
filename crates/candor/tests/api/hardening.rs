//! Bad input: each gets a precise refusal, and none changes what is stored.

use crate::helpers::*;
use candor_server::BODY_LIMIT;
use reqwest::StatusCode;
use serde_json::Value;
use std::io::{Read, Write};

const FORM: &str = "application/x-www-form-urlencoded";

async fn access_tokens(app: &TestApp) -> i64 {
    app.sql_count("SELECT COUNT(*) FROM access_tokens", &[]).await
}

/// A client-credentials request whose body is `len` bytes long (the padding is a parameter no
/// one reads, so it is ignored as RFC 6749 §3.1 says unknown parameters are).
fn padded_body(len: usize) -> String {
    let head = "grant_type=client_credentials&scope=api.read&padding=";
    format!("{head}{}", "p".repeat(len - head.len()))
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_and_issues_nothing() {
    let app = spawn_app().await;
    let before = access_tokens(&app).await;
    let post = |body: String| {
        reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(SERVICE, Some(app.secret(SERVICE)))
            .header("content-type", FORM)
            .body(body)
            .send()
    };
    let r = post(padded_body(BODY_LIMIT + 1)).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let trace = r.headers()["candor-trace-id"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_reason(&body, "body_too_large", "invalid_request");
    assert_eq!(body["facts"]["limit_bytes"], BODY_LIMIT);
    assert_eq!(access_tokens(&app).await, before);
    // Recorded and explained like any other refusal.
    assert_eq!(app.explain(&trace).await["reason"], "body_too_large");

    // At the limit, the same request is served: the size was the cause, and the unknown
    // parameter is ignored.
    let r = post(padded_body(BODY_LIMIT)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(access_tokens(&app).await, before + 1);

    // Other endpoints that read a body refuse the same way.
    let r = reqwest::Client::new()
        .post(app.url("/userinfo"))
        .header("content-type", FORM)
        .body(format!("access_token={}", "a".repeat(BODY_LIMIT)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json::<Value>().await.unwrap()["reason"], "body_too_large");
    let r = browser()
        .post(app.url("/authorize"))
        .header("content-type", FORM)
        .body(format!("client_id={WEB}&state={}", "s".repeat(BODY_LIMIT)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().await.unwrap().contains("body_too_large"));
}

#[tokio::test]
async fn a_chunked_body_without_a_length_is_cut_off_at_the_limit() {
    let app = spawn_app().await;
    let before = access_tokens(&app).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{SERVICE}:{}", app.secret(SERVICE)),
    );
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let head = format!(
            "POST /token HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nContent-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        let chunk = format!("grant_type=client_credentials&padding={}", "p".repeat(4000));
        // Twice the limit, in chunks; the server may stop reading (and close) before the end.
        for _ in 0..(2 * BODY_LIMIT / chunk.len()) {
            if s.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).is_err() {
                break;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n");
        let mut answer = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"reason\":\"body_too_large\""), "{answer}");
    assert_eq!(access_tokens(&app).await, before);
}

#[tokio::test]
async fn wrong_methods_get_405_with_the_methods_allowed() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    for (method, path, allowed) in [
        (reqwest::Method::GET, "/token", "POST"),
        (reqwest::Method::PUT, "/userinfo", "GET"),
        (reqwest::Method::DELETE, "/authorize", "POST"),
        (reqwest::Method::POST, "/jwks.json", "GET"),
    ] {
        let r = c.request(method.clone(), app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let allow = r.headers().get("allow").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        assert!(allow.split(',').any(|m| m.trim() == allowed), "{method} {path}: allow {allow:?}");
    }
}

#[tokio::test]
async fn control_characters_in_a_token_parameter_are_refused_by_name() {
    let app = spawn_app().await;
    let before = access_tokens(&app).await;
    let (status, body, _) =
        app.token(&[("grant_type", "client_credentials"), ("scope", "api\r\nX-Injected: 1")], Some(SERVICE)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_reason(&body, "parameter_invalid", "invalid_request");
    assert_eq!(body["facts"]["parameter"], "scope");
    assert!(body["facts"]["problem"].as_str().unwrap().contains("U+000D"), "{body:#}");
    assert_eq!(access_tokens(&app).await, before);
}

#[tokio::test]
async fn an_unusable_state_is_refused_at_authorize_never_dropped_nor_echoed() {
    let app = spawn_app().await;
    let p = pkce();
    let long = "s".repeat(5000);
    for (state, problem) in [("abc\r\nSet-Cookie: session=evil", "U+000D"), (long.as_str(), "at most")] {
        let mut params = auth_params(WEB, WEB_REDIRECT, "openid", &p);
        params.retain(|(k, _)| *k != "state");
        params.push(("state", state));
        let r = app.authorize(&browser(), &params).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        assert!(r.headers().get("set-cookie").is_none_or(|c| !c.to_str().unwrap().contains("evil")));
        let trace = r.headers()["candor-trace-id"].to_str().unwrap().to_string();
        let cb = Callback::parse(&location(&r));
        assert_eq!(cb.get("error"), Some("invalid_request"), "{}", cb.url);
        assert!(cb.get("code").is_none() && cb.get("state").is_none(), "{}", cb.url);
        let explained = app.explain(&trace).await;
        assert_eq!(explained["reason"], "parameter_invalid");
        let facts = explained["facts"].to_string();
        assert!(facts.contains("state") && facts.contains(problem), "{facts}");
    }
}

#[tokio::test]
async fn header_fields_over_the_limit_get_431_naming_the_largest_never_showing_it() {
    let app = spawn_app().await;
    let before = access_tokens(&app).await;
    let secret_looking = format!("v{}", "0123456789abcdef".repeat(1100));
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(SERVICE, Some(app.secret(SERVICE)))
        .header("x-padding", &secret_looking)
        .form(&[("grant_type", "client_credentials"), ("scope", "api.read")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let text = r.text().await.unwrap();
    assert!(!text.contains(&secret_looking[..64]), "the header's value was echoed");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_reason(&body, "headers_too_large", "invalid_request");
    assert_eq!(body["facts"]["largest_header"], "x-padding");
    assert_eq!(body["facts"]["limit_bytes"], candor_server::HEADER_LIMIT);
    assert!(body["facts"]["total_bytes"].as_u64().unwrap() > candor_server::HEADER_LIMIT as u64);
    assert_eq!(access_tokens(&app).await, before);

    // Bloated cookies at the browser's endpoints: a page that names the cookie header.
    let p = pkce();
    let cookies: Vec<String> = (0..40).map(|i| format!("app{i}={}", "c".repeat(500))).collect();
    let r = browser()
        .get(app.url("/authorize"))
        .query(&auth_params(WEB, WEB_REDIRECT, "openid", &p))
        .header("cookie", cookies.join("; "))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(r.headers().get("location").is_none());
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains("headers_too_large") && page.contains("cookie"), "{page}");
    assert!(!page.contains(&"c".repeat(500)));

    // Just under the limit, the same request is served.
    let r = reqwest::Client::new()
        .get(app.url("/.well-known/openid-configuration"))
        .header("x-padding", "p".repeat(candor_server::HEADER_LIMIT - 400))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn forged_host_and_forwarded_headers_change_no_url() {
    let app = spawn_app().await;
    let forged = [
        ("host", "evil.example"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "host=evil.example;proto=https"),
    ];
    let mut discovery = reqwest::Client::new().get(app.url("/.well-known/openid-configuration"));
    for (name, value) in forged {
        discovery = discovery.header(name, value);
    }
    let doc: Value = discovery.send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["issuer"], app.base);
    assert!(!doc.to_string().contains("evil.example"), "{doc:#}");
    // An error redirect carries the configured issuer too.
    let p = pkce();
    let mut params = auth_params(WEB, WEB_REDIRECT, "openid", &p);
    params.push(("prompt", "bogus"));
    let mut request = browser().get(app.url("/authorize")).query(&params);
    for (name, value) in forged {
        request = request.header(name, value);
    }
    let r = request.send().await.unwrap();
    let cb = Callback::parse(&location(&r));
    assert_eq!(cb.get("iss"), Some(app.base.as_str()));
    assert!(!cb.url.contains("evil.example"), "{}", cb.url);
}

#[tokio::test]
async fn a_client_over_its_token_rate_gets_429_and_strangers_cannot_spend_its_allowance() {
    let app = spawn_app_with(
        |s| {
            s.token_rate = 1;
            s.token_burst = 2;
        },
        candor_server::Disclosure::Detailed,
    )
    .await;
    let cc = [("grant_type", "client_credentials"), ("scope", "api.read")];
    // Requests that do not authenticate as the client are not counted against it.
    for _ in 0..5 {
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(SERVICE, Some("cds_not_the_secret"))
            .form(&cc)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.token(&cc, Some(SERVICE)).await.0, StatusCode::OK);
    assert_eq!(app.token(&cc, Some(SERVICE)).await.0, StatusCode::OK);
    let before = access_tokens(&app).await;
    let (status, body, headers) = app.token(&cc, Some(SERVICE)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body:#}");
    assert_reason(&body, "rate_limited", "temporarily_unavailable");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!((body["facts"]["rate"].as_u64(), body["facts"]["burst"].as_u64()), (Some(1), Some(2)));
    assert_eq!(access_tokens(&app).await, before);
    // Another client has its own allowance.
    let (status, body) = app.exchange("not-a-code", "v").await;
    assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "{body:#}");
    // A second later, one more request is allowed.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(app.token(&cc, Some(SERVICE)).await.0, StatusCode::OK);
}
