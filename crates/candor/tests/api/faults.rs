//! Faults: `candor serve` killed with SIGKILL in the middle of code exchanges and refresh
//! rotations, then started again on the same store (the SQLite file, or the PostgreSQL schema).
//! Every token a client received must still work (or be revoked for a reason the client can be
//! told), no code may be redeemed twice, and a SQLite file must be intact.

use crate::helpers::Backend;
use crate::served::{Load, seed, start};
use reqwest::StatusCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

impl Load {
    /// One worker: a code, its exchange, then rotations, until the server is gone.
    async fn work(&self, chain: &Mutex<Chain>, rotations: &AtomicUsize, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let Ok((code, verifier)) = self.code().await else { return };
            match self.exchange(&code, &verifier).await {
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
                match self.rotate(&refresh).await {
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
    let secret = seed(&config, &base, port, &store);

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
                let (status, body) = load.rotate(refresh).await.unwrap();
                assert!(status == StatusCode::OK || body["reason"] == "refresh_token_reused", "{status} {body}");
                retried += usize::from(status == StatusCode::OK);
            }
            Some(Lost::Exchange { code, verifier }) => {
                unknown_outcomes += 1;
                let (status, body) = load.exchange(code, verifier).await.unwrap();
                assert!(status == StatusCode::OK || body["reason"] == "code_already_redeemed", "{status} {body}");
                retried += usize::from(status == StatusCode::OK);
            }
            // The newest refresh token a client holds, with no request lost, rotates once.
            None => {
                if let Some(refresh) = &chain.refresh {
                    let (status, body) = load.rotate(refresh).await.unwrap();
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
