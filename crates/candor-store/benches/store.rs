//! Benchmarks of the store calls on the token path, on the SQLite store through the
//! `candor_core::store` traits only: redeeming a code (claim + access and refresh token in one
//! durable transaction), storing client-credentials tokens, and loading a client.
//!
//! Every commit is fsynced before the call returns, so one call at a time measures the disk's
//! fsync latency; the `concurrent_16` variant runs 16 redemptions at once, the load under which
//! committing several transactions per fsync pays off.
//!
//! Run: `cargo bench -p candor-store --bench store` (add `-- --quick` for a rough pass). The
//! database goes in a temporary directory under `CANDOR_BENCH_DIR` if set (to measure a given
//! disk), else under the system temporary directory.
// Benchmark setup, not a request path: a failure here should stop the run loudly.
#![allow(clippy::unwrap_used)]

use candor_core::model::*;
use candor_core::store::{Redemption, Store};
use candor_core::tokens::hash_secret;
use candor_store::SqliteStore;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

const NOW: i64 = 1_700_000_000;
const CLIENT: &str = "web-app";
const USER: &str = "8f14e45fceea167a5a36dedd4bea2543";
const CONCURRENT: usize = 16;

/// The audit record the token endpoint commits with a success's tokens.
fn audit() -> candor_core::audit::AuditRecord {
    candor_core::audit::AuditRecord {
        client_id: Some(CLIENT.into()),
        grant_type: Some("client_credentials".into()),
        encoding: Some("form".into()),
        ..candor_core::audit::AuditRecord::success(&fresh("trace"), NOW, "token")
    }
}

/// A store-shaped key never used before in this run: the time of issue, then a digest, as
/// `hash_secret` keys the values Candor issues (so keys arrive in order, as in production).
fn fresh(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    format!("{millis:012x}{}", hash_secret(&format!("bench-{what}-{}", NEXT.fetch_add(1, Ordering::Relaxed))))
}

fn client() -> Client {
    Client {
        id: CLIENT.into(),
        name: "Web app".into(),
        secret_hash: Some(hash_secret("cds_placeholder")),
        redirect_uris: vec!["https://app.example.com/callback".into()],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken, GrantType::ClientCredentials],
        auth_method: AuthMethod::ClientSecretBasic,
        scopes: vec!["openid".into(), "profile".into(), "email".into(), "offline_access".into()],
        require_pkce: true,
        allow_plain_pkce: false,
        id_token_alg: SigningAlg::ES256,
        always_issue_refresh_token: false,
        created_at: NOW,
        jwks: None,
        require_par: false,
        access_token_format: candor_core::model::TokenFormat::Opaque,
        resources: vec![],
        require_dpop: false,
        logout: Default::default(),
        registration_token_hash: None,
        secret_sealed: None,
    }
}

fn user() -> User {
    User {
        id: USER.into(),
        username: "alice".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$placeholder$placeholder".into(),
        name: Some("Alice".into()),
        email: Some("alice@example.com".into()),
        email_verified: true,
        disabled: false,
        created_at: NOW,
    }
}

/// A pending code, as /authorize stores it, and the tokens its redemption stores.
fn code_and_tokens() -> (CodeRecord, IssuedTokens) {
    let grant = fresh("grant");
    let code = CodeRecord {
        hash: fresh("code"),
        grant_id: grant.clone(),
        client_id: CLIENT.into(),
        user_id: USER.into(),
        redirect_uri: "https://app.example.com/callback".into(),
        redirect_uri_sent: true,
        scope: "openid profile offline_access".into(),
        resources: vec![],
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: Some(candor_core::pkce::CodeChallenge {
            value: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            method: candor_core::pkce::ChallengeMethod::S256,
        }),
        dpop_jkt: None,
        auth_time: NOW - 30,
        issued_at: NOW - 5,
        expires_at: NOW + 55,
        redeemed_at: None,
        redeemed_trace: None,
        issued_trace: "trace-authorize".into(),
        sid: None,
        session_ended_at: None,
    };
    let tokens = IssuedTokens {
        access: AccessTokenRecord {
            hash: fresh("access"),
            grant_id: grant.clone(),
            client_id: CLIENT.into(),
            user_id: Some(USER.into()),
            scope: "openid profile offline_access".into(),
            audience: None,
            format: candor_core::model::TokenFormat::Opaque,
            dpop_jkt: None,
            issued_at: NOW,
            expires_at: NOW + 3600,
            revoked_at: None,
        },
        refresh: Some(RefreshTokenRecord {
            hash: fresh("refresh"),
            grant_id: grant,
            client_id: CLIENT.into(),
            user_id: USER.into(),
            scope: "openid profile offline_access".into(),
            resources: vec![],
            dpop_jkt: None,
            auth_time: NOW - 30,
            issued_at: NOW,
            expires_at: NOW + 30 * 24 * 3600,
            rotated_at: None,
            rotated_trace: None,
            revoked_at: None,
            issued_trace: "trace-token".into(),
            sid: None,
        }),
        audit: Some(audit()),
    };
    (code, tokens)
}

/// What a client-credentials grant stores: an access token with no user and no refresh token.
fn client_credentials_tokens() -> IssuedTokens {
    IssuedTokens {
        access: AccessTokenRecord {
            hash: fresh("access"),
            grant_id: fresh("grant"),
            client_id: CLIENT.into(),
            user_id: None,
            scope: "api.read".into(),
            audience: None,
            format: candor_core::model::TokenFormat::Opaque,
            dpop_jkt: None,
            issued_at: NOW,
            expires_at: NOW + 3600,
            revoked_at: None,
        },
        refresh: None,
        audit: Some(audit()),
    }
}

/// Inserts pending codes (not timed); several at once so the setup does not take as long as the
/// measurement.
async fn insert_codes(store: &Arc<dyn Store>, codes: Vec<CodeRecord>) {
    let mut tasks = JoinSet::new();
    for code in codes {
        let store = store.clone();
        tasks.spawn(async move { store.insert_code(&code).await.unwrap() });
        if tasks.len() >= CONCURRENT {
            tasks.join_next().await.unwrap().unwrap();
        }
    }
    tasks.join_all().await;
}

/// Durable writes take milliseconds: few samples, each of the same number of iterations.
fn durable(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
}

fn store_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let base = std::env::var_os("CANDOR_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(base).unwrap();
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let store: Arc<dyn Store> = Arc::new(rt.block_on(SqliteStore::open(&url)).unwrap());
    rt.block_on(async {
        store.insert_client(&client()).await.unwrap();
        store.insert_user(&user()).await.unwrap();
    });

    redeem(c, &rt, &store);
    insert_tokens(c, &rt, &store);
    lookups(c, &rt, &store);
    drop(store);
    drop(dir);
}

fn redeem(c: &mut Criterion, rt: &Runtime, store: &Arc<dyn Store>) {
    let mut g = c.benchmark_group("redeem_code");
    durable(&mut g);

    g.throughput(Throughput::Elements(1));
    g.bench_function("sequential", |b| {
        b.iter_custom(|iters| {
            let (codes, tokens): (Vec<_>, Vec<_>) = (0..iters).map(|_| code_and_tokens()).unzip();
            let hashes: Vec<String> = codes.iter().map(|c| c.hash.clone()).collect();
            rt.block_on(async {
                insert_codes(store, codes).await;
                let start = Instant::now();
                for (hash, issued) in hashes.iter().zip(&tokens) {
                    let outcome = store.redeem_code(hash, NOW, "trace-token", issued).await.unwrap();
                    assert_eq!(outcome, Redemption::Redeemed);
                }
                start.elapsed()
            })
        })
    });

    // 16 token requests for 16 different codes arriving together, as under load.
    g.throughput(Throughput::Elements(CONCURRENT as u64));
    g.bench_function("concurrent_16", |b| {
        b.iter_custom(|iters| {
            let batches: Vec<Vec<(CodeRecord, IssuedTokens)>> =
                (0..iters).map(|_| (0..CONCURRENT).map(|_| code_and_tokens()).collect()).collect();
            rt.block_on(async {
                insert_codes(store, batches.iter().flatten().map(|(code, _)| code.clone()).collect()).await;
                let mut elapsed = Duration::ZERO;
                for batch in batches {
                    let start = Instant::now();
                    let mut tasks = JoinSet::new();
                    for (code, issued) in batch {
                        let store = store.clone();
                        tasks.spawn(async move { store.redeem_code(&code.hash, NOW, "trace-token", &issued).await });
                    }
                    for outcome in tasks.join_all().await {
                        assert_eq!(outcome.unwrap(), Redemption::Redeemed);
                    }
                    elapsed += start.elapsed();
                }
                elapsed
            })
        })
    });
    g.finish();
}

fn insert_tokens(c: &mut Criterion, rt: &Runtime, store: &Arc<dyn Store>) {
    let mut g = c.benchmark_group("insert_tokens");
    durable(&mut g);
    g.throughput(Throughput::Elements(1));
    g.bench_function("client_credentials", |b| {
        b.iter_custom(|iters| {
            let tokens: Vec<IssuedTokens> = (0..iters).map(|_| client_credentials_tokens()).collect();
            rt.block_on(async {
                let start = Instant::now();
                for issued in &tokens {
                    store.insert_tokens(issued).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn lookups(c: &mut Criterion, rt: &Runtime, store: &Arc<dyn Store>) {
    let mut g = c.benchmark_group("lookup");
    g.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    g.bench_function("client", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(store.client(black_box(CLIENT)).await.unwrap().unwrap());
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, store_benches);
criterion_main!(benches);
