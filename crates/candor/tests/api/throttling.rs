//! Login throttling by username and by client address: 429 with `Retry-After` once the free
//! failures are spent, before the password is even checked.

use crate::helpers::*;
use candor_server::Disclosure;
use reqwest::StatusCode;

/// A browser at a fresh login form: the browser, the form's path and its csrf token.
async fn login_form(app: &TestApp) -> (reqwest::Client, String, String) {
    let b = browser();
    let p = pkce();
    let r = app.authorize(&b, &auth_params(WEB, WEB_REDIRECT, "openid", &p)).await;
    let interaction = location(&r);
    let page = b.get(app.url(&interaction)).send().await.unwrap().text().await.unwrap();
    (b, format!("{interaction}/login"), csrf_of(&page))
}

async fn attempt(
    app: &TestApp,
    (b, path, csrf): &(reqwest::Client, String, String),
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut r = b.post(app.url(path)).form(&[("csrf", csrf.as_str()), ("username", username), ("password", password)]);
    if let Some(f) = forwarded_for {
        r = r.header("x-forwarded-for", f);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn a_username_waits_after_its_free_failures_then_doubling_and_a_success_clears_it() {
    let app = spawn_app().await;
    let form = login_form(&app).await;
    for _ in 0..4 {
        assert_eq!(attempt(&app, &form, USER, "wrong", None).await.status(), StatusCode::UNAUTHORIZED);
    }
    // The fifth failure is the last free one; the next attempt waits at least a second (whole
    // seconds: until the second after the failure's second plus one), even with the right
    // password, which is not looked at.
    assert_eq!(attempt(&app, &form, USER, "wrong", None).await.status(), StatusCode::UNAUTHORIZED);
    let r = attempt(&app, &form, USER, PASSWORD, None).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = r.headers()["retry-after"].to_str().unwrap().to_string();
    assert!(wait == "2" || wait == "1", "{wait}");
    assert!(r.headers().get("set-cookie").is_none());
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Too many failed sign-ins") && page.contains(&format!("Try again in {wait} second")),
        "{page}"
    );
    // Usernames are counted without regard to case.
    assert_eq!(attempt(&app, &form, "ALICE", "wrong", None).await.status(), StatusCode::TOO_MANY_REQUESTS);
    // Waited out, a wrong password doubles the wait...
    app.clock.advance(2);
    assert_eq!(attempt(&app, &form, USER, "wrong", None).await.status(), StatusCode::UNAUTHORIZED);
    let wait = attempt(&app, &form, USER, PASSWORD, None).await.headers()["retry-after"].to_str().unwrap().to_string();
    assert!(wait == "3" || wait == "2", "{wait}");
    // ...and the right password, once waited out, signs in and clears the count.
    app.clock.advance(3);
    let r = attempt(&app, &form, USER, PASSWORD, None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    let form = login_form(&app).await;
    assert_eq!(attempt(&app, &form, USER, "wrong", None).await.status(), StatusCode::UNAUTHORIZED);
    // An unknown username is counted like a known one: the answers do not tell them apart.
    for _ in 0..5 {
        assert_eq!(attempt(&app, &form, "nobody", "x", None).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(attempt(&app, &form, "nobody", "x", None).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn an_address_waits_after_its_free_failures_across_usernames_behind_a_trusted_proxy() {
    let app = spawn_app_with(
        |s| {
            s.trusted_proxies = vec!["127.0.0.0/8".into()];
            s.login_address_free_failures = 3;
        },
        Disclosure::Detailed,
    )
    .await;
    let form = login_form(&app).await;
    let (guesser, other) = ("203.0.113.9", "198.51.100.7");
    for user in ["u1", "u2", "u3"] {
        assert_eq!(attempt(&app, &form, user, "x", Some(guesser)).await.status(), StatusCode::UNAUTHORIZED);
    }
    // A fourth username from the same address waits; the same attempt from another address does not.
    assert_eq!(attempt(&app, &form, "u4", "x", Some(guesser)).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(attempt(&app, &form, "u4", "x", Some(other)).await.status(), StatusCode::UNAUTHORIZED);
    // A forged header before the proxy's own entry does not move the guesser elsewhere.
    let forged = format!("{other}, {guesser}");
    assert_eq!(attempt(&app, &form, "u5", "x", Some(&forged)).await.status(), StatusCode::TOO_MANY_REQUESTS);
    // The guesser's own success does not clear the address.
    app.clock.advance(2);
    assert_eq!(attempt(&app, &form, USER, PASSWORD, Some(guesser)).await.status(), StatusCode::SEE_OTHER);
    let form = login_form(&app).await;
    assert_eq!(attempt(&app, &form, "u6", "x", Some(guesser)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(attempt(&app, &form, "u7", "x", Some(guesser)).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn without_trusted_proxies_forwarded_for_is_ignored() {
    let app = spawn_app_with(|s| s.login_address_free_failures = 2, Disclosure::Detailed).await;
    let form = login_form(&app).await;
    // Each attempt claims another address; all come from the same peer, which is what counts.
    assert_eq!(attempt(&app, &form, "u1", "x", Some("203.0.113.1")).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(attempt(&app, &form, "u2", "x", Some("203.0.113.2")).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(attempt(&app, &form, "u3", "x", Some("203.0.113.3")).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attempts_sent_together_get_no_more_password_checks_than_the_free_failures() {
    let app = spawn_app_with(|s| s.login_free_failures = 3, Disclosure::Detailed).await;
    let mut forms = vec![];
    for _ in 0..12 {
        forms.push(login_form(&app).await);
    }
    // Twelve guesses at once: each is counted as it is admitted, before its password is hashed,
    // so only the free three are checked, however the requests interleave.
    let mut guesses = tokio::task::JoinSet::new();
    for (b, path, csrf) in forms {
        let url = app.url(&path);
        guesses.spawn(async move {
            let form = [("csrf", csrf.as_str()), ("username", USER), ("password", "wrong")];
            b.post(url).form(&form).send().await.unwrap().status()
        });
    }
    let answers = guesses.join_all().await;
    let checked = answers.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let throttled = answers.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, throttled), (3, 9), "{answers:?}");
}
