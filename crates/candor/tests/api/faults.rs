//! Faults: `candor serve` killed with SIGKILL in the middle of code exchanges and refresh
//! rotations, then started again on the same store (the SQLite file, or the PostgreSQL schema).
//! Every token a client received must still work (or be revoked for a reason the client can be
//! told), no code may be redeemed twice, and a SQLite file must be intact.

use crate::helpers::{Backend, Callback, csrf_of, location, pkce};
use reqwest::StatusCode;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REDIRECT: &str = "https://app.example.com/callback";
const PASSWORD: &str = "fault-test password";

fn candor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_candor"))
}

fn admin(args: &[&str], config: &std::path::Path) -> String {
    let out = candor().args(args).arg("--config").arg(config).env("CANDOR_NEW_PASSWORD", PASSWORD).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn start(config: &std::path::Path, base: &str) -> Child {
    let child =
        candor().args(["serve", "--config"]).arg(config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/.well-known/openid-configuration")).await.is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

/// What one worker holds when the server dies.
#[derive(Debug, Default)]
struct Chain {
    /// Every access token the worker received in a complete 200 response.
    access_tokens: Vec<String>,
    /// The newest refresh token it received.
    refresh: Option<String>,
    /// A request sent whose answer never came: its outcome is unknown to the client.
    lost: Option<Lost>,
}

#[derive(Debug)]
enum Lost {
    Exchange { code: String, verifier: String },
    Rotation { refresh: String },
}

struct Load {
    base: String,
    secret: String,
}

impl Load {
    async fn token(&self, form: &[(&str, &str)]) -> Result<(StatusCode, Value), reqwest::Error> {
        let r = reqwest::Client::new()
            .post(format!("{}/token", self.base))
            .basic_auth("web", Some(&self.secret))
            .form(form)
            .send()
            .await?;
        let status = r.status();
        Ok((status, r.json().await?))
    }

    /// Authorize, log in, consent: a code and its verifier, or an error once the server is gone.
    async fn code(&self) -> Result<(String, String), reqwest::Error> {
        let b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build()?;
        let p = pkce();
        let params = [
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid offline_access"),
            ("state", "s"),
            ("code_challenge", p.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("prompt", "consent"),
        ];
        let mut r = b.get(format!("{}/authorize", self.base)).query(&params).send().await?;
        for _ in 0..6 {
            if r.status().is_redirection() {
                let to = location(&r);
                if !to.starts_with('/') {
                    return Ok((Callback::parse(&to).code(), p.verifier));
                }
                r = b.get(format!("{}{to}", self.base)).send().await?;
                continue;
            }
            let page = r.text().await?;
            let action = page.split(r#"action=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
            let csrf = csrf_of(&page);
            let form: Vec<(&str, &str)> = if action.ends_with("/login") {
                vec![("csrf", &csrf), ("username", "alice"), ("password", PASSWORD)]
            } else {
                vec![("csrf", &csrf), ("decision", "allow")]
            };
            r = b.post(format!("{}{action}", self.base)).form(&form).send().await?;
        }
        panic!("no code after six steps")
    }

    /// One worker: a code, its exchange, then rotations, until the server is gone.
    async fn work(&self, chain: &Mutex<Chain>, rotations: &AtomicUsize, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let Ok((code, verifier)) = self.code().await else { return };
            let exchange = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
            ];
            match self.token(&exchange).await {
                Ok((StatusCode::OK, t)) => {
                    let mut c = chain.lock().unwrap();
                    c.access_tokens.push(t["access_token"].as_str().unwrap().to_string());
                    c.refresh = Some(t["refresh_token"].as_str().unwrap().to_string());
                }
                Ok((status, body)) => panic!("exchange refused while the server ran: {status} {body}"),
                Err(_) => {
                    chain.lock().unwrap().lost = Some(Lost::Exchange { code, verifier });
                    return;
                }
            }
            for _ in 0..40 {
                let refresh = chain.lock().unwrap().refresh.clone().unwrap();
                match self.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await {
                    Ok((StatusCode::OK, t)) => {
                        let mut c = chain.lock().unwrap();
                        c.access_tokens.push(t["access_token"].as_str().unwrap().to_string());
                        c.refresh = Some(t["refresh_token"].as_str().unwrap().to_string());
                        rotations.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok((status, body)) => panic!("rotation refused while the server ran: {status} {body}"),
                    Err(_) => {
                        chain.lock().unwrap().lost = Some(Lost::Rotation { refresh });
                        return;
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sigkill_under_load_loses_no_token_a_client_received_and_redeems_no_code_twice() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("candor.toml");
    let (store, scratch) = match crate::BACKEND {
        Backend::Sqlite => (format!("sqlite://{}/candor.db", dir.path().display()), None),
        Backend::Postgres => {
            let base = candor_store::scratch::test_database_url().unwrap().unwrap();
            let scratch = candor_store::scratch::PgScratch::create(&base).await.unwrap();
            (scratch.url.clone(), Some(scratch))
        }
    };
    std::fs::write(&config, format!("issuer = \"{base}\"\nlisten = \"127.0.0.1:{port}\"\nstore = \"{store}\"\n"))
        .unwrap();
    admin(&["migrate"], &config);
    let added = admin(
        &[
            "client",
            "add",
            "--id",
            "web",
            "--name",
            "web",
            "--redirect-uri",
            REDIRECT,
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--scope",
            "openid",
            "--scope",
            "offline_access",
        ],
        &config,
    );
    let secret = added.lines().find_map(|l| l.trim().strip_prefix("client_secret:")).unwrap().trim().to_string();
    admin(&["user", "add", "alice"], &config);

    let mut node = start(&config, &base).await;
    let load = Arc::new(Load { base: base.clone(), secret });
    let rotations = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let chains: Vec<Arc<Mutex<Chain>>> = (0..6).map(|_| Arc::new(Mutex::new(Chain::default()))).collect();
    let workers: Vec<_> = chains
        .iter()
        .map(|chain| {
            let (load, chain, rotations, stop) = (load.clone(), chain.clone(), rotations.clone(), stop.clone());
            tokio::spawn(async move { load.work(&chain, &rotations, &stop).await })
        })
        .collect();
    // Kill the server once the load is well under way: exchanges and rotations in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while rotations.load(Ordering::Relaxed) < 60 {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.kill().unwrap();
    node.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let chains: Vec<Chain> = chains.into_iter().map(|c| std::mem::take(&mut *c.lock().unwrap())).collect();
    let received: usize = chains.iter().map(|c| c.access_tokens.len()).sum();
    assert!(received >= 60, "{received} tokens received before the kill");

    let mut node = start(&config, &base).await;
    let http = reqwest::Client::new();
    // Every access token a client received works after the restart.
    for token in chains.iter().flat_map(|c| &c.access_tokens) {
        let r = http.get(format!("{base}/userinfo")).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
    let (mut unknown_outcomes, mut retried) = (0, 0);
    for chain in &chains {
        match &chain.lost {
            // The answer was lost: the request either took effect (then repeating it is a replay,
            // refused and explained) or did not (then it works now). Never both, never neither.
            Some(Lost::Rotation { refresh }) => {
                unknown_outcomes += 1;
                let (status, body) =
                    load.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await.unwrap();
                assert!(status == StatusCode::OK || body["reason"] == "refresh_token_reused", "{status} {body}");
                retried += usize::from(status == StatusCode::OK);
            }
            Some(Lost::Exchange { code, verifier }) => {
                unknown_outcomes += 1;
                let form = [
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", verifier.as_str()),
                ];
                let (status, body) = load.token(&form).await.unwrap();
                assert!(status == StatusCode::OK || body["reason"] == "code_already_redeemed", "{status} {body}");
                retried += usize::from(status == StatusCode::OK);
            }
            // The newest refresh token a client holds, with no request lost, rotates once.
            None => {
                if let Some(refresh) = &chain.refresh {
                    let (status, body) =
                        load.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await.unwrap();
                    assert_eq!(status, StatusCode::OK, "{body}");
                }
            }
        }
    }
    node.kill().unwrap();
    node.wait().unwrap();
    eprintln!(
        "{received} access tokens received, {unknown_outcomes} answers lost, {retried} of those took effect only on retry"
    );

    // No grant has two live refresh tokens (a code redeemed twice, or a token rotated twice, would
    // leave two), nor two chain roots: a chain's first refresh token is the one no rotation of its
    // grant issued, so two roots would mean two redemptions of the grant's one code.
    let (forked, redeemed_twice) = (
        "SELECT COUNT(*) FROM (SELECT grant_id FROM {t} WHERE rotated_at IS NULL AND revoked_at IS NULL
         GROUP BY grant_id HAVING COUNT(*) > 1) AS f",
        "SELECT COUNT(*) FROM (SELECT r.grant_id FROM {t} r WHERE NOT EXISTS (SELECT 1 FROM {t} p
         WHERE p.grant_id = r.grant_id AND p.rotated_trace = r.issued_trace) GROUP BY r.grant_id HAVING COUNT(*) > 1) AS f",
    );
    let counts: Vec<i64> = match &scratch {
        None => {
            let pool = sqlx::SqlitePool::connect(&store).await.unwrap();
            // And the file is intact.
            let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&pool).await.unwrap();
            assert_eq!(check, "ok");
            let mut counts = vec![];
            for q in [forked, redeemed_twice] {
                counts.push(sqlx::query_scalar(&q.replace("{t}", "refresh_tokens")).fetch_one(&pool).await.unwrap());
            }
            counts
        }
        Some(scratch) => {
            let base = candor_store::scratch::test_database_url().unwrap().unwrap();
            let pool = sqlx::PgPool::connect(&base).await.unwrap();
            let table = format!("\"{}\".refresh_tokens", scratch.schema);
            let mut counts = vec![];
            for q in [forked, redeemed_twice] {
                counts.push(sqlx::query_scalar(&q.replace("{t}", &table)).fetch_one(&pool).await.unwrap());
            }
            counts
        }
    };
    assert_eq!(counts, [0, 0], "grants with two live refresh tokens, grants redeemed twice");
}
