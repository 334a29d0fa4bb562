//! The store contracts, written once against `&dyn Store` and run against every store
//! (SQLite on disk and in memory, and PostgreSQL in a schema of its own when
//! `CANDOR_TEST_POSTGRES_URL` is set).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use candor_core::audit::AuditRecord;
use candor_core::keys::generate;
use candor_core::model::*;
use candor_core::store::*;
use std::sync::Arc;

struct Subject {
    name: &'static str,
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    _scratch: Option<candor_store::scratch::PgScratch>,
}

async fn stores() -> Vec<Subject> {
    let dir = tempfile::tempdir().unwrap();
    let file = candor_store::open(&format!("sqlite://{}/contract.db", dir.path().display())).await.unwrap();
    let memory = candor_store::open("sqlite::memory:").await.unwrap();
    let mut subjects = vec![
        Subject { name: "sqlite file", store: file.into_store(), _dir: Some(dir), _scratch: None },
        Subject { name: "sqlite memory", store: memory.into_store(), _dir: None, _scratch: None },
    ];
    match candor_store::scratch::test_database_url() {
        Err(e) => panic!("{e}"),
        Ok(None) => {
            use std::io::Write;
            // Written past the test harness's capture, so it shows in `cargo test` output.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: the PostgreSQL store contract (set CANDOR_TEST_POSTGRES_URL=postgres://user@host/db to run it)"
            );
        }
        Ok(Some(base)) => {
            let scratch = candor_store::scratch::PgScratch::create(&base).await.unwrap();
            let pg = candor_store::open(&scratch.url).await.unwrap();
            assert_eq!(pg.kind(), "postgres");
            subjects.push(Subject { name: "postgres", store: pg.into_store(), _dir: None, _scratch: Some(scratch) });
        }
    }
    subjects
}

/// Runs `n` copies of `call` at once against the store; their results, in no particular order.
async fn concurrently<T, F>(n: usize, store: &Arc<dyn Store>, call: impl Fn(Arc<dyn Store>) -> F) -> Vec<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(call(store.clone()))).collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn code(hash: &str, grant: &str) -> CodeRecord {
    CodeRecord {
        hash: hash.into(),
        grant_id: grant.into(),
        client_id: "c1".into(),
        user_id: "u1".into(),
        redirect_uri: "https://a/cb".into(),
        redirect_uri_sent: true,
        scope: "openid offline_access".into(),
        resources: vec![],
        nonce: None,
        code_challenge: None,
        dpop_jkt: None,
        auth_time: 100,
        issued_at: 100,
        expires_at: 160,
        redeemed_at: None,
        redeemed_trace: None,
        issued_trace: "t-issue".into(),
        sid: None,
        session_ended_at: None,
    }
}

fn issued(access: &str, refresh: Option<&str>, grant: &str) -> IssuedTokens {
    IssuedTokens {
        access: AccessTokenRecord {
            hash: access.into(),
            grant_id: grant.into(),
            client_id: "c1".into(),
            user_id: Some("u1".into()),
            scope: "openid".into(),
            audience: None,
            format: candor_core::model::TokenFormat::Opaque,
            dpop_jkt: None,
            issued_at: 100,
            expires_at: 3700,
            revoked_at: None,
        },
        refresh: refresh.map(|r| RefreshTokenRecord {
            hash: r.into(),
            grant_id: grant.into(),
            client_id: "c1".into(),
            user_id: "u1".into(),
            scope: "openid offline_access".into(),
            resources: vec![],
            dpop_jkt: None,
            auth_time: 100,
            issued_at: 100,
            expires_at: 10_000,
            rotated_at: None,
            rotated_trace: None,
            revoked_at: None,
            issued_trace: "t".into(),
            sid: None,
        }),
        audit: None,
    }
}

#[tokio::test]
async fn of_concurrent_redemptions_of_one_code_exactly_one_stores_its_tokens() {
    for s in stores().await {
        s.store.insert_code(&code("code-1", "g1")).await.unwrap();
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let store = s.store.clone();
                tokio::spawn(async move {
                    store
                        .redeem_code(
                            "code-1",
                            120,
                            &format!("t{i}"),
                            &issued(&format!("at-{i}"), Some(&format!("rt-{i}")), "g1"),
                        )
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut redeemed = 0;
        for t in tasks {
            match t.await.unwrap() {
                Redemption::Redeemed => redeemed += 1,
                Redemption::AlreadyRedeemed { redeemed_at, redeemed_trace } => {
                    assert_eq!(redeemed_at, 120);
                    assert!(redeemed_trace.is_some());
                }
                other => panic!("{}: {other:?}", s.name),
            }
        }
        assert_eq!(redeemed, 1, "{}", s.name);
        let (access, refresh) = s.store.tokens_of_grant("g1").await.unwrap();
        assert_eq!((access.len(), refresh.len()), (1, 1), "{}: only the winner's tokens are stored", s.name);
        assert_eq!(s.store.redeem_code("nope", 120, "t", &issued("x", None, "g")).await.unwrap(), Redemption::Missing);
        let stored = s.store.code("code-1").await.unwrap().unwrap();
        assert_eq!(stored.redeemed_at, Some(120), "{}: the tombstone keeps the redemption", s.name);
        assert_eq!(s.store.code_by_grant("g1").await.unwrap().unwrap().hash, "code-1");
    }
}

#[tokio::test]
async fn a_success_audit_record_is_committed_with_its_tokens_and_only_with_them() {
    for s in stores().await {
        s.store.insert_code(&code("code-a", "ga")).await.unwrap();
        let with_audit = |access: &str, trace: &str| IssuedTokens {
            audit: Some(AuditRecord {
                client_id: Some("c1".into()),
                grant_id: Some("ga".into()),
                ..AuditRecord::success(trace, 120, "token")
            }),
            ..issued(access, None, "ga")
        };
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let store = s.store.clone();
                let tokens = with_audit(&format!("at-a{i}"), &format!("trace-{i}"));
                tokio::spawn(
                    async move { store.redeem_code("code-a", 120, &format!("trace-{i}"), &tokens).await.unwrap() },
                )
            })
            .collect();
        let mut winner = None;
        for (i, t) in tasks.into_iter().enumerate() {
            if t.await.unwrap() == Redemption::Redeemed {
                winner = Some(i);
            }
        }
        let winner = winner.expect("one redemption wins");
        let records = s.store.audit_by_grant("ga").await.unwrap();
        let traces: Vec<&str> = records.iter().map(|r| r.trace_id.as_str()).collect();
        assert_eq!(
            traces,
            [format!("trace-{winner}")],
            "{}: only the winner's record, committed with its tokens",
            s.name
        );
        // Client credentials: the record travels with the access token.
        s.store
            .insert_tokens(&IssuedTokens {
                audit: Some(AuditRecord::success("trace-cc", 130, "token")),
                ..issued("at-cc", None, "gcc")
            })
            .await
            .unwrap();
        assert!(s.store.audit("trace-cc").await.unwrap().is_some(), "{}", s.name);
        // A token that cannot be stored (a duplicate) takes its record down with it.
        let duplicate = IssuedTokens {
            audit: Some(AuditRecord::success("trace-dup", 130, "token")),
            ..issued("at-cc", None, "gcc")
        };
        assert!(s.store.insert_tokens(&duplicate).await.is_err());
        assert!(s.store.audit("trace-dup").await.unwrap().is_none(), "{}", s.name);
    }
}

#[tokio::test]
async fn of_concurrent_rotations_of_one_refresh_token_exactly_one_wins() {
    for s in stores().await {
        s.store.insert_tokens(&issued("at-0", Some("rt-0"), "g2")).await.unwrap();
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let store = s.store.clone();
                tokio::spawn(async move {
                    store
                        .rotate_refresh_token(
                            "rt-0",
                            200,
                            &format!("t{i}"),
                            &issued(&format!("at-{i}x"), Some(&format!("rt-{i}x")), "g2"),
                        )
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut rotated = 0;
        for t in tasks {
            match t.await.unwrap() {
                Rotation::Rotated => rotated += 1,
                Rotation::AlreadyRotated { rotated_at, .. } => assert_eq!(rotated_at, 200),
                other => panic!("{}: {other:?}", s.name),
            }
        }
        assert_eq!(rotated, 1, "{}", s.name);
        // Within a reuse grace, a sibling joins the family while the rotated token is not revoked.
        assert!(s.store.insert_sibling("rt-0", &issued("at-sib", Some("rt-sib"), "g2")).await.unwrap(), "{}", s.name);
        assert!(!s.store.insert_sibling("nope", &issued("at-x", Some("rt-x"), "g2")).await.unwrap(), "{}", s.name);
        assert_eq!(s.store.revoke_grant("g2", 300).await.unwrap(), 6, "{}: 3 access + 3 refresh", s.name);
        assert!(
            !s.store.insert_sibling("rt-0", &issued("at-late", Some("rt-late"), "g2")).await.unwrap(),
            "{}: no sibling joins a revoked family",
            s.name
        );
        assert_eq!(s.store.revoke_grant("g2", 301).await.unwrap(), 0, "{}: revocation is idempotent", s.name);
        let (_, refresh) = s.store.tokens_of_grant("g2").await.unwrap();
        let live = refresh.iter().find(|r| r.rotated_at.is_none()).unwrap();
        assert_eq!(
            s.store.rotate_refresh_token(&live.hash, 400, "t", &issued("a", Some("b"), "g2")).await.unwrap(),
            Rotation::Revoked
        );
        assert_eq!(
            s.store.rotate_refresh_token("none", 400, "t", &issued("a", Some("b"), "g2")).await.unwrap(),
            Rotation::Missing
        );
    }
}

/// A family revoked while a rotation of its newest token runs (a replay on one node, the
/// legitimate refresh on another) ends with no live token: either the rotation commits first and
/// the revocation catches the token it inserted, or the revocation commits first and the rotation
/// finds the token revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_racing_a_rotation_leaves_no_live_token_in_the_family() {
    for s in stores().await {
        for round in 0..150 {
            let grant = format!("race-{round}");
            let rt = format!("rt-{round}");
            s.store.insert_tokens(&issued(&format!("at-{round}"), Some(&rt), &grant)).await.unwrap();
            let (rotate, revoke) = {
                let (a, b) = (s.store.clone(), s.store.clone());
                let (g1, g2, rt1) = (grant.clone(), grant.clone(), rt.clone());
                let next = issued(&format!("at-{round}n"), Some(&format!("rt-{round}n")), &g1);
                tokio::join!(
                    tokio::spawn(async move { a.rotate_refresh_token(&rt1, 200, "t-rotate", &next).await.unwrap() }),
                    tokio::spawn(async move { b.revoke_grant(&g2, 200).await.unwrap() })
                )
            };
            let (rotate, _) = (rotate.unwrap(), revoke.unwrap());
            assert!(matches!(rotate, Rotation::Rotated | Rotation::Revoked), "{}: {rotate:?}", s.name);
            let (access, refresh) = s.store.tokens_of_grant(&grant).await.unwrap();
            assert!(
                access.iter().all(|a| a.revoked_at.is_some()) && refresh.iter().all(|r| r.revoked_at.is_some()),
                "{} round {round}: a token issued by the racing rotation ({rotate:?}) escaped the revocation",
                s.name
            );
        }
    }
}

/// Several nodes sweep at once (here: concurrent sweeps on separate connections): every dead row
/// is deleted exactly once in all, no sweep exceeds its batch, and no live row goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sweeps_share_the_work_in_bounded_batches() {
    for s in stores().await {
        for i in 0..400 {
            s.store.insert_code(&code(&format!("dead-{i}"), &format!("gd-{i}"))).await.unwrap();
        }
        let mut live = code("live", "g-live");
        live.expires_at = 1_000_000;
        s.store.insert_code(&live).await.unwrap();
        let sweepers: Vec<_> = (0..4)
            .map(|_| {
                let store = s.store.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let swept = store.sweep(&SweepPolicy::new(100_000, 60, 1_000_000, 50)).await.unwrap();
                        if swept.total() == 0 {
                            return mine;
                        }
                        mine.push(swept.codes);
                    }
                })
            })
            .collect();
        let mut total = 0;
        for t in sweepers {
            let batches = t.await.unwrap();
            assert!(batches.iter().all(|n| *n <= 50), "{}: a batch exceeded its bound: {batches:?}", s.name);
            total += batches.iter().sum::<u64>();
        }
        assert_eq!(total, 400, "{}: each dead code deleted once in all", s.name);
        assert!(s.store.code(&live.hash).await.unwrap().is_some(), "{}: the live code stays", s.name);
    }
}

#[tokio::test]
async fn keys_retire_only_their_own_algorithm() {
    for s in stores().await {
        for alg in SigningAlg::ALL {
            s.store.add_key(&generate(alg, 10).unwrap(), 10).await.unwrap();
        }
        let newer = generate(SigningAlg::ES256, 20).unwrap();
        s.store.add_key(&newer, 20).await.unwrap();
        let keys = s.store.keys().await.unwrap();
        assert_eq!(keys.len(), 4);
        let active: Vec<_> = keys.iter().filter(|k| k.retired_at.is_none()).collect();
        assert_eq!(active.len(), 3, "{}", s.name);
        assert!(active.iter().any(|k| k.kid == newer.kid));
        assert_eq!(s.store.remove_retired_keys(21).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn users_and_clients_are_unique_and_removal_revokes_their_tokens() {
    for s in stores().await {
        let user = User {
            id: "u1".into(),
            username: "alice".into(),
            password_hash: "h".into(),
            name: None,
            email: None,
            email_verified: false,
            disabled: false,
            created_at: 0,
        };
        s.store.insert_user(&user).await.unwrap();
        let dup = User { id: "u2".into(), ..user.clone() };
        assert!(matches!(s.store.insert_user(&dup).await, Err(StoreError::Conflict(_))), "{}", s.name);
        let client = Client {
            id: "c1".into(),
            name: "C".into(),
            secret_hash: None,
            redirect_uris: vec!["https://a/cb".into()],
            grant_types: vec![GrantType::AuthorizationCode],
            auth_method: AuthMethod::None,
            scopes: vec!["openid".into()],
            require_pkce: true,
            allow_plain_pkce: false,
            id_token_alg: SigningAlg::RS256,
            always_issue_refresh_token: false,
            created_at: 0,
            jwks: None,
            require_par: false,
            access_token_format: candor_core::model::TokenFormat::Opaque,
            resources: vec![],
            require_dpop: false,
            logout: Default::default(),
            registration_token_hash: None,
            secret_sealed: None,
        };
        s.store.insert_client(&client).await.unwrap();
        assert!(matches!(s.store.insert_client(&client).await, Err(StoreError::Conflict(_))));
        assert_eq!(s.store.client("c1").await.unwrap().unwrap(), client, "{}: round trip", s.name);
        // An update replaces everything but the id and the creation time, and keeps the tokens.
        let mut changed = Client {
            name: "Renamed".into(),
            redirect_uris: vec!["https://b/cb".into()],
            registration_token_hash: Some("rt-hash".into()),
            created_at: 999,
            ..client.clone()
        };
        changed.logout.post_logout_redirect_uris = vec!["https://b/bye".into()];
        assert!(s.store.update_client(&changed).await.unwrap());
        changed.created_at = client.created_at;
        assert_eq!(s.store.client("c1").await.unwrap().unwrap(), changed, "{}: updated", s.name);
        assert!(!s.store.update_client(&Client { id: "nope".into(), ..changed.clone() }).await.unwrap());
        s.store.insert_tokens(&issued("at-u", Some("rt-u"), "g3")).await.unwrap();
        s.store
            .insert_session(&SessionRecord {
                hash: "s1".into(),
                user_id: "u1".into(),
                auth_time: 0,
                created_at: 0,
                expires_at: 99,
                sid: None,
            })
            .await
            .unwrap();
        assert!(s.store.set_disabled("u1", true).await.unwrap());
        assert!(s.store.session("s1").await.unwrap().is_none(), "{}: disabling ends sessions", s.name);
        assert!(s.store.remove_client("c1", 50).await.unwrap());
        assert_eq!(s.store.access_token("at-u").await.unwrap().unwrap().revoked_at, Some(50));
        assert_eq!(s.store.refresh_token("rt-u").await.unwrap().unwrap().revoked_at, Some(50));
        assert!(!s.store.remove_client("c1", 51).await.unwrap());
    }
}

#[tokio::test]
async fn resources_round_trip_and_removing_one_revokes_its_tokens_and_takes_it_off_clients() {
    for s in stores().await {
        let api = Resource {
            id: "https://api.example/".into(),
            name: "Orders".into(),
            scopes: vec!["orders:read".into(), "orders:write".into()],
            access_token_format: TokenFormat::Jwt,
            access_token_lifetime: Some(300),
            signing_alg: SigningAlg::ES256,
            created_at: 10,
        };
        let other = Resource {
            id: "urn:example:billing".into(),
            access_token_format: TokenFormat::Opaque,
            access_token_lifetime: None,
            ..api.clone()
        };
        s.store.insert_resource(&api).await.unwrap();
        s.store.insert_resource(&other).await.unwrap();
        assert!(matches!(s.store.insert_resource(&api).await, Err(StoreError::Conflict(_))), "{}", s.name);
        assert_eq!(s.store.resource(&api.id).await.unwrap().unwrap(), api, "{}: round trip", s.name);
        assert_eq!(s.store.list_resources().await.unwrap().len(), 2, "{}", s.name);
        let mut client = Client {
            id: "c-res".into(),
            name: "C".into(),
            secret_hash: None,
            redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            auth_method: AuthMethod::ClientSecretBasic,
            scopes: vec![],
            require_pkce: false,
            allow_plain_pkce: false,
            id_token_alg: SigningAlg::RS256,
            always_issue_refresh_token: false,
            created_at: 0,
            jwks: None,
            require_par: false,
            access_token_format: TokenFormat::Jwt,
            resources: vec![api.id.clone(), other.id.clone()],
            require_dpop: false,
            logout: Default::default(),
            registration_token_hash: None,
            secret_sealed: None,
        };
        s.store.insert_client(&client).await.unwrap();
        assert_eq!(s.store.client("c-res").await.unwrap().unwrap(), client, "{}: round trip", s.name);
        // The grant's resources and each token's audience and format are kept.
        let mut c = code("code-res", "g-res");
        c.resources = vec![api.id.clone(), other.id.clone()];
        let mut tokens = issued("at-res", Some("rt-res"), "g-res");
        tokens.access.audience = Some(api.id.clone());
        tokens.access.format = TokenFormat::Jwt;
        if let Some(r) = &mut tokens.refresh {
            r.resources = c.resources.clone();
        }
        s.store.insert_code(&c).await.unwrap();
        assert_eq!(s.store.code("code-res").await.unwrap().unwrap(), c, "{}", s.name);
        assert_eq!(s.store.redeem_code("code-res", 120, "t", &tokens).await.unwrap(), Redemption::Redeemed);
        assert_eq!(s.store.access_token("at-res").await.unwrap().unwrap(), tokens.access, "{}", s.name);
        assert_eq!(s.store.refresh_token("rt-res").await.unwrap().unwrap().resources, c.resources, "{}", s.name);
        let mut for_other = issued("at-res-2", None, "g-res-2");
        for_other.access.audience = Some(other.id.clone());
        s.store.insert_tokens(&for_other).await.unwrap();

        assert!(s.store.remove_resource(&api.id, 200).await.unwrap(), "{}", s.name);
        assert!(!s.store.remove_resource(&api.id, 201).await.unwrap(), "{}: gone", s.name);
        assert!(s.store.resource(&api.id).await.unwrap().is_none());
        assert_eq!(s.store.access_token("at-res").await.unwrap().unwrap().revoked_at, Some(200), "{}", s.name);
        assert_eq!(s.store.access_token("at-res-2").await.unwrap().unwrap().revoked_at, None, "{}", s.name);
        client.resources = vec![other.id.clone()];
        assert_eq!(s.store.client("c-res").await.unwrap().unwrap(), client, "{}: taken off the client", s.name);
    }
}

#[tokio::test]
async fn revoking_one_access_token_leaves_its_grant_s_other_tokens_alone() {
    for s in stores().await {
        s.store.insert_tokens(&issued("at-r1", Some("rt-r1"), "g6")).await.unwrap();
        s.store.insert_tokens(&issued("at-r2", None, "g6")).await.unwrap();
        assert!(s.store.revoke_access_token("at-r1", 50).await.unwrap(), "{}", s.name);
        assert!(!s.store.revoke_access_token("at-r1", 60).await.unwrap(), "{}: already revoked", s.name);
        assert!(!s.store.revoke_access_token("at-none", 60).await.unwrap(), "{}: unknown", s.name);
        assert_eq!(s.store.access_token("at-r1").await.unwrap().unwrap().revoked_at, Some(50), "{}", s.name);
        assert_eq!(s.store.access_token("at-r2").await.unwrap().unwrap().revoked_at, None, "{}", s.name);
        assert_eq!(s.store.refresh_token("rt-r1").await.unwrap().unwrap().revoked_at, None, "{}", s.name);
    }
}

#[tokio::test]
async fn withdrawn_consent_revokes_access_tokens_of_that_client_only() {
    for s in stores().await {
        s.store.grant_consent("u1", "c1", &["openid".into(), "email".into()], 0).await.unwrap();
        s.store.grant_consent("u1", "c1", &["openid".into()], 1).await.unwrap();
        assert_eq!(s.store.consent("u1", "c1").await.unwrap(), vec!["email".to_string(), "openid".to_string()]);
        s.store.insert_tokens(&issued("at-c", Some("rt-c"), "g4")).await.unwrap();
        let mut other = issued("at-other", None, "g5");
        other.access.client_id = "c2".into();
        s.store.insert_tokens(&other).await.unwrap();
        assert!(s.store.revoke_consent("u1", "c1", 10).await.unwrap());
        assert!(s.store.consent("u1", "c1").await.unwrap().is_empty());
        assert_eq!(s.store.access_token("at-c").await.unwrap().unwrap().revoked_at, Some(10), "{}", s.name);
        assert_eq!(s.store.refresh_token("rt-c").await.unwrap().unwrap().revoked_at, None, "refresh is refused at use");
        assert_eq!(s.store.access_token("at-other").await.unwrap().unwrap().revoked_at, None);
        assert!(!s.store.revoke_consent("u1", "c1", 11).await.unwrap());
    }
}

#[tokio::test]
async fn audit_records_are_found_by_trace_grant_client_and_reason() {
    for s in stores().await {
        let mut ok = AuditRecord::success("t-ok", 100, "token");
        ok.client_id = Some("c1".into());
        ok.grant_id = Some("g6".into());
        s.store.record_audit(&ok).await.unwrap();
        let r = candor_core::Rejection::new(candor_core::Reason::CodeExpired).with_internal("grant_id", "g6");
        let mut bad = AuditRecord::rejected("t-bad", 110, "token", &r);
        bad.client_id = Some("c1".into());
        s.store.record_audit(&bad).await.unwrap();
        assert_eq!(s.store.audit("t-bad").await.unwrap().unwrap(), bad, "{}: round trip", s.name);
        assert_eq!(s.store.audit_by_grant("g6").await.unwrap().len(), 2);
        assert_eq!(s.store.recent_rejections(Some("c1"), None, 10).await.unwrap().len(), 1);
        assert_eq!(s.store.recent_rejections(None, Some("code_unknown"), 10).await.unwrap().len(), 0);
        assert_eq!(
            s.store.rejection_counts(0).await.unwrap(),
            vec![(Some("c1".to_string()), "code_expired".to_string(), 1)]
        );
    }
}

#[tokio::test]
async fn of_concurrent_uses_of_one_client_assertion_exactly_one_counts_and_expired_ones_are_swept() {
    for s in stores().await {
        let firsts =
            concurrently(
                8,
                &s.store,
                |store| async move { store.use_client_assertion("c1", "jti-1", 500).await.unwrap() },
            )
            .await;
        assert_eq!(firsts.iter().filter(|first| **first).count(), 1, "{}: one use of a jti counts", s.name);
        // The same jti of another client is its own.
        assert!(s.store.use_client_assertion("c2", "jti-1", 500).await.unwrap(), "{}", s.name);
        assert!(s.store.use_client_assertion("c1", "jti-2", 90_000).await.unwrap(), "{}", s.name);
        // Kept a day past expiry, then swept; the unexpired one stays (and still counts as used).
        assert_eq!(s.store.sweep(&SweepPolicy::new(80_000, 100, 1_000_000, 1000)).await.unwrap().client_assertions, 0);
        let swept = s.store.sweep(&SweepPolicy::new(90_000, 100, 1_000_000, 1000)).await.unwrap();
        assert_eq!(swept.client_assertions, 2, "{}", s.name);
        assert!(!s.store.use_client_assertion("c1", "jti-2", 90_000).await.unwrap(), "{}", s.name);
    }
}

#[tokio::test]
async fn of_concurrent_uses_of_one_dpop_proof_exactly_one_counts_and_stale_ones_are_swept() {
    for s in stores().await {
        let firsts =
            concurrently(8, &s.store, |store| async move { store.use_dpop_proof("jkt-a", "p-1", 500).await.unwrap() })
                .await;
        assert_eq!(firsts.iter().filter(|first| **first).count(), 1, "{}: one use of a proof counts", s.name);
        // The same jti with another key is another proof.
        assert!(s.store.use_dpop_proof("jkt-b", "p-1", 500).await.unwrap(), "{}", s.name);
        assert!(s.store.use_dpop_proof("jkt-a", "p-2", 2_000).await.unwrap(), "{}", s.name);
        let swept = s.store.sweep(&SweepPolicy::new(1_000, 100, 1_000_000, 1000)).await.unwrap();
        assert_eq!(swept.dpop_proofs, 2, "{}: past their window", s.name);
        assert!(!s.store.use_dpop_proof("jkt-a", "p-2", 2_000).await.unwrap(), "{}: kept while it counts", s.name);
    }
}

#[tokio::test]
async fn of_concurrent_uses_of_one_pushed_request_exactly_one_takes_it() {
    use candor_core::model::PushedRequest;
    use candor_core::store::Taking;
    for s in stores().await {
        let pushed =
            PushedRequest { hash: "pr-1".into(), client_id: "c1".into(), params: "a=b".into(), expires_at: 190 };
        s.store.insert_pushed_request(&pushed).await.unwrap();
        let takings =
            concurrently(8, &s.store, |store| async move { store.take_pushed_request("pr-1", 150).await.unwrap() })
                .await;
        let mut taken = 0;
        for taking in takings {
            match taking {
                Taking::Taken(p) => {
                    assert_eq!(p, pushed, "{}", s.name);
                    taken += 1;
                }
                Taking::AlreadyUsed { used_at } => assert_eq!(used_at, 150, "{}", s.name),
                Taking::Missing => panic!("{}: the pushed request vanished", s.name),
            }
        }
        assert_eq!(taken, 1, "{}", s.name);
        assert_eq!(s.store.take_pushed_request("pr-none", 150).await.unwrap(), Taking::Missing);
        // Swept once expired, used or not.
        assert_eq!(s.store.sweep(&SweepPolicy::new(189, 100, 1_000_000, 1000)).await.unwrap().pushed_requests, 0);
        assert_eq!(s.store.sweep(&SweepPolicy::new(191, 100, 1_000_000, 1000)).await.unwrap().pushed_requests, 1);
        assert_eq!(s.store.take_pushed_request("pr-1", 200).await.unwrap(), Taking::Missing);
    }
}

#[tokio::test]
async fn sweeping_keeps_tombstones_for_their_retention_and_is_bounded() {
    for s in stores().await {
        for i in 0..3 {
            s.store.insert_code(&code(&format!("sw-{i}"), &format!("gs{i}"))).await.unwrap();
        }
        // Codes expire at 160: with a 100 s retention they stay until 260.
        assert_eq!(s.store.sweep(&SweepPolicy::new(250, 100, 1_000_000, 1000)).await.unwrap().codes, 0, "{}", s.name);
        assert_eq!(
            s.store.sweep(&SweepPolicy::new(300, 100, 1_000_000, 2)).await.unwrap().codes,
            2,
            "{}: bounded batch",
            s.name
        );
        assert_eq!(s.store.sweep(&SweepPolicy::new(300, 100, 1_000_000, 2)).await.unwrap().codes, 1);
        assert!(s.store.code("sw-0").await.unwrap().is_none());
    }
}

/// Audit records older than their retention go, whether their trace id is ordered by time (the
/// sweep walks those by key) or random (made before trace ids were ordered); newer ones stay.
#[tokio::test]
async fn sweeping_removes_audit_records_past_retention_whatever_their_trace_id() {
    // A trace id as `tokens::ordered_id` makes it at second `at`.
    let ordered = |at: i64, n: u32| format!("{:012x}{n:020x}", at * 1000);
    for s in stores().await {
        let old = [
            (ordered(1_000, 1), 1_000),
            (ordered(1_999, 2), 1_999),
            ("9f2c0a7e5b6d4c3b2a1908f7e6d5c4b3".to_string(), 1_500),
            ("t-legacy-old".to_string(), 1_500),
        ];
        let recent = [
            (ordered(2_000, 3), 2_000),
            (ordered(2_500, 4), 2_500),
            ("0a7e5b6d4c3b2a19f2c08f7e6d5c4b31".to_string(), 2_600),
        ];
        for (id, at) in old.iter().chain(&recent) {
            s.store.record_audit(&AuditRecord::success(id, *at, "token")).await.unwrap();
        }
        // Retention 1 000 s at 3 000: records from before 2 000 go, in batches of at most 3.
        assert_eq!(
            s.store.sweep(&SweepPolicy::new(3_000, 100, 1_000, 3)).await.unwrap().audit,
            3,
            "{}: bounded batch",
            s.name
        );
        assert_eq!(s.store.sweep(&SweepPolicy::new(3_000, 100, 1_000, 3)).await.unwrap().audit, 1, "{}", s.name);
        assert_eq!(s.store.sweep(&SweepPolicy::new(3_000, 100, 1_000, 3)).await.unwrap().audit, 0, "{}", s.name);
        for (id, _) in &old {
            assert!(s.store.audit(id).await.unwrap().is_none(), "{}: {id} should be gone", s.name);
        }
        for (id, _) in &recent {
            assert!(s.store.audit(id).await.unwrap().is_some(), "{}: {id} should stay", s.name);
        }
    }
}

/// Dead tokens go however they are keyed (by issue time, or a bare digest from before keys were
/// ordered); the sweep walks only the keys of tokens issued before the horizon, or before the
/// horizon less the tokens' lifetime when it knows it, and the tokens' own times decide.
#[tokio::test]
async fn sweeping_walks_token_keys_by_issue_time_and_keeps_what_is_alive() {
    // A key as `tokens::hash_secret` makes it for a token issued at second `at`.
    let ordered = |at: i64, n: u8| format!("{:012x}{}", at * 1000, format!("{n:02x}").repeat(32));
    let (now, retention, lifetime) = (10_000_000, 100, 3_600);
    let horizon = now - retention;
    let token = |hash: String, issued_at: i64, expires_at: i64, revoked_at: Option<i64>| {
        let mut t = issued(&hash, None, "g-sweep");
        t.access.issued_at = issued_at;
        t.access.expires_at = expires_at;
        t.access.revoked_at = revoked_at;
        t
    };
    let long_dead = ordered(horizon - lifetime - 50, 1);
    let legacy_high = format!("f{}", "3".repeat(63));
    let legacy_low = format!("0{}", "5".repeat(63));
    let revoked_recently_issued = ordered(horizon - 10, 2);
    let live = ordered(now - 10, 3);
    let long_lived = ordered(horizon - lifetime - 40, 4);
    for s in stores().await {
        for t in [
            token(long_dead.clone(), horizon - lifetime - 50, horizon - 50, None),
            token(legacy_high.clone(), 1_000, 4_600, None),
            token(legacy_low.clone(), 1_000, 4_600, Some(2_000)),
            token(revoked_recently_issued.clone(), horizon - 10, horizon + lifetime, Some(horizon - 5)),
            token(live.clone(), now - 10, now + lifetime, None),
            // Issued with a longer lifetime than the sweep knows of: in the walked range, alive.
            token(long_lived.clone(), horizon - lifetime - 40, now + 1_000, None),
        ] {
            s.store.insert_tokens(&t).await.unwrap();
        }
        let knowing = SweepPolicy::new(now, retention, 1_000_000_000, 1000).with_token_lifetimes(lifetime, lifetime);
        assert_eq!(s.store.sweep(&knowing).await.unwrap().access_tokens, 3, "{}", s.name);
        for gone in [&long_dead, &legacy_high, &legacy_low] {
            assert!(s.store.access_token(gone).await.unwrap().is_none(), "{}: {gone} should be gone", s.name);
        }
        // Revoked before the horizon but issued after horizon - lifetime: left for a later sweep,
        // which a sweep that does not know the lifetime is.
        assert!(s.store.access_token(&revoked_recently_issued).await.unwrap().is_some(), "{}", s.name);
        let unknowing = SweepPolicy::new(now, retention, 1_000_000_000, 1000);
        assert_eq!(s.store.sweep(&unknowing).await.unwrap().access_tokens, 1, "{}", s.name);
        assert!(s.store.access_token(&revoked_recently_issued).await.unwrap().is_none(), "{}", s.name);
        for kept in [&live, &long_lived] {
            assert!(s.store.access_token(kept).await.unwrap().is_some(), "{}: {kept} should stay", s.name);
        }
    }
}

/// Writes from many concurrent requests share transactions (SQLite commits them in groups): a
/// write that fails leaves nothing of itself behind and takes nothing of the others with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_among_concurrent_writes_leaves_nothing_and_spoils_no_other() {
    for s in stores().await {
        s.store.insert_tokens(&issued("a-taken", Some("r-taken"), "g-taken")).await.unwrap();
        // Alone: the access token goes in, then the refresh token's hash is taken; the call fails whole.
        let alone = s.store.insert_tokens(&issued("a-alone", Some("r-taken"), "g-alone")).await;
        assert!(matches!(alone, Err(StoreError::Conflict(_))), "{}: {alone:?}", s.name);
        assert!(s.store.access_token("a-alone").await.unwrap().is_none(), "{}: half a write was kept", s.name);
        // Together: every third write fails the same way, at its second statement.
        let mut calls = Vec::new();
        for i in 0..60 {
            let store = s.store.clone();
            let refresh = if i % 3 == 0 { "r-taken".to_string() } else { format!("r-{i}") };
            calls.push(tokio::spawn(async move {
                store.insert_tokens(&issued(&format!("a-{i}"), Some(&refresh), &format!("g-{i}"))).await
            }));
        }
        for (i, call) in calls.into_iter().enumerate() {
            let result = call.await.unwrap();
            let stored = s.store.access_token(&format!("a-{i}")).await.unwrap();
            if i % 3 == 0 {
                assert!(matches!(result, Err(StoreError::Conflict(_))), "{}: write {i}: {result:?}", s.name);
                assert!(stored.is_none(), "{}: write {i} failed but its access token was kept", s.name);
            } else {
                assert!(result.is_ok(), "{}: write {i} was spoiled by another: {result:?}", s.name);
                assert!(stored.is_some(), "{}: write {i} succeeded but is not stored", s.name);
                assert!(s.store.refresh_token(&format!("r-{i}")).await.unwrap().is_some(), "{}", s.name);
            }
        }
    }
}

fn device(hash: &str, user_code_hash: &str, grant: &str) -> DeviceCodeRecord {
    DeviceCodeRecord {
        hash: hash.into(),
        user_code_hash: user_code_hash.into(),
        grant_id: grant.into(),
        client_id: "c1".into(),
        scope: "openid offline_access".into(),
        resources: vec!["https://api.example/".into()],
        issued_at: 100,
        expires_at: 700,
        poll_interval: 5,
        last_polled_at: None,
        status: DeviceStatus::Pending,
        user_id: None,
        auth_time: None,
        decided_at: None,
        decided_trace: None,
        redeemed_at: None,
        redeemed_trace: None,
        issued_trace: "t-dev".into(),
    }
}

#[tokio::test]
async fn device_codes_are_found_by_either_code_and_polls_slow_down_by_five_seconds() {
    use candor_core::device::Poll;
    for s in stores().await {
        let rec = device("dc-1", "uc-1", "gd1");
        s.store.insert_device_code(&rec).await.unwrap();
        assert_eq!(s.store.device_code("dc-1").await.unwrap().as_ref(), Some(&rec), "{}", s.name);
        assert_eq!(s.store.device_code_by_user_code("uc-1").await.unwrap().as_ref(), Some(&rec), "{}", s.name);
        assert!(s.store.device_code("uc-1").await.unwrap().is_none());
        // A user code is unique: a second authorization that drew the same one is refused.
        let taken = s.store.insert_device_code(&device("dc-2", "uc-1", "gd2")).await.unwrap_err();
        assert!(matches!(taken, StoreError::Conflict(_)), "{}: {taken:?}", s.name);

        let poll = |at| {
            let store = s.store.clone();
            async move { store.poll_device_code("dc-1", at).await.unwrap().unwrap() }
        };
        assert_eq!(poll(110).await, Poll { previous: None, interval: 5 }, "{}: the first poll", s.name);
        assert_eq!(poll(115).await, Poll { previous: Some(110), interval: 5 }, "{}: on time", s.name);
        let fast = poll(118).await;
        assert_eq!(fast, Poll { previous: Some(115), interval: 10 }, "{}: 3 s after: slowed down", s.name);
        assert!(fast.too_fast(118));
        // The raised interval holds for every later poll: 9 s is too soon now, 10 s is not.
        assert_eq!(poll(127).await.interval, 15, "{}", s.name);
        let on_time = poll(142).await;
        assert_eq!(on_time, Poll { previous: Some(127), interval: 15 }, "{}", s.name);
        assert!(!on_time.too_fast(142));
        let stored = s.store.device_code("dc-1").await.unwrap().unwrap();
        assert_eq!((stored.last_polled_at, stored.poll_interval), (Some(142), 15), "{}", s.name);
        assert!(s.store.poll_device_code("dc-none", 150).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn of_concurrent_decisions_one_wins_and_an_approved_device_code_is_redeemed_once() {
    use candor_core::device::Decision;
    for s in stores().await {
        s.store.insert_device_code(&device("dc-1", "uc-1", "gd1")).await.unwrap();
        let decisions = concurrently(8, &s.store, |store| async move {
            let approve = Decision::Approved { user_id: "u1".into(), auth_time: 140 };
            store.decide_device_code("dc-1", &approve, 150, "t-decide").await.unwrap()
        })
        .await;
        assert_eq!(decisions.iter().filter(|d| **d).count(), 1, "{}: one decision", s.name);
        let deny = Decision::Denied { user_id: "u2".into() };
        assert!(!s.store.decide_device_code("dc-1", &deny, 151, "t-late").await.unwrap(), "{}", s.name);
        let approved = s.store.device_code("dc-1").await.unwrap().unwrap();
        assert_eq!(approved.status, DeviceStatus::Approved, "{}", s.name);
        assert_eq!(
            (approved.user_id.as_deref(), approved.auth_time, approved.decided_at, approved.decided_trace.as_deref()),
            (Some("u1"), Some(140), Some(150), Some("t-decide"))
        );
        // A decided code is no longer polled.
        assert!(s.store.poll_device_code("dc-1", 155).await.unwrap().is_none(), "{}", s.name);

        let redemptions = concurrently(8, &s.store, |store| async move {
            let trace = candor_core::tokens::random_id().unwrap();
            let tokens = issued(&format!("at-{trace}"), Some(&format!("rt-{trace}")), "gd1");
            store.redeem_device_code("dc-1", 160, &trace, &tokens).await.unwrap()
        })
        .await;
        let won = redemptions.iter().filter(|r| **r == Redemption::Redeemed).count();
        assert_eq!(won, 1, "{}: {redemptions:?}", s.name);
        assert!(redemptions.iter().all(|r| matches!(
            r,
            Redemption::Redeemed | Redemption::AlreadyRedeemed { redeemed_at: 160, redeemed_trace: Some(_) }
        )));
        let (access, refresh) = s.store.tokens_of_grant("gd1").await.unwrap();
        assert_eq!((access.len(), refresh.len()), (1, 1), "{}: only the winner's tokens are stored", s.name);

        // A pending code cannot be redeemed; an expired one cannot be decided.
        s.store.insert_device_code(&device("dc-2", "uc-2", "gd2")).await.unwrap();
        assert_eq!(
            s.store.redeem_device_code("dc-2", 160, "t", &issued("x", None, "gd2")).await.unwrap(),
            Redemption::Missing
        );
        let approve = Decision::Approved { user_id: "u1".into(), auth_time: 140 };
        assert!(!s.store.decide_device_code("dc-2", &approve, 700, "t").await.unwrap(), "{}: expired", s.name);
        assert!(s.store.tokens_of_grant("gd2").await.unwrap().0.is_empty());
    }
}

#[tokio::test]
async fn device_codes_stay_as_tombstones_for_their_retention_and_go_with_their_client() {
    for s in stores().await {
        s.store.insert_device_code(&device("dc-1", "uc-1", "gd1")).await.unwrap();
        // Expires at 700: with a 100 s retention it stays until 800.
        assert_eq!(s.store.sweep(&SweepPolicy::new(790, 100, 1_000_000, 1000)).await.unwrap().device_codes, 0);
        assert_eq!(s.store.sweep(&SweepPolicy::new(801, 100, 1_000_000, 1000)).await.unwrap().device_codes, 1);
        assert!(s.store.device_code("dc-1").await.unwrap().is_none(), "{}", s.name);

        let client = Client {
            id: "c1".into(),
            name: "TV".into(),
            secret_hash: None,
            redirect_uris: vec![],
            grant_types: vec![GrantType::DeviceCode],
            auth_method: AuthMethod::None,
            scopes: vec!["openid".into()],
            require_pkce: true,
            allow_plain_pkce: false,
            id_token_alg: SigningAlg::RS256,
            always_issue_refresh_token: false,
            created_at: 0,
            jwks: None,
            require_par: false,
            access_token_format: TokenFormat::Opaque,
            resources: vec![],
            require_dpop: false,
            logout: Default::default(),
            registration_token_hash: None,
            secret_sealed: None,
        };
        s.store.insert_client(&client).await.unwrap();
        assert_eq!(s.store.client("c1").await.unwrap().unwrap().grant_types, [GrantType::DeviceCode], "{}", s.name);
        s.store.insert_device_code(&device("dc-2", "uc-2", "gd2")).await.unwrap();
        assert!(s.store.remove_client("c1", 200).await.unwrap());
        assert!(s.store.device_code("dc-2").await.unwrap().is_none(), "{}: removed with its client", s.name);
    }
}

#[tokio::test]
async fn ending_a_session_names_its_clients_and_revokes_only_its_grants_without_offline_access() {
    for s in stores().await {
        let session = SessionRecord {
            hash: "sess".into(),
            sid: Some("sid-1".into()),
            user_id: "u1".into(),
            auth_time: 100,
            created_at: 100,
            expires_at: 10_000,
        };
        s.store.insert_session(&session).await.unwrap();
        let in_session = |hash: &str, grant: &str, client: &str, scope: &str, sid: &str| CodeRecord {
            sid: Some(sid.into()),
            client_id: client.into(),
            scope: scope.into(),
            ..code(hash, grant)
        };
        // One online grant and one offline grant in the session (c1 signs in twice), one in another.
        s.store.insert_code(&in_session("code-on", "g-on", "c1", "openid", "sid-1")).await.unwrap();
        s.store.insert_code(&in_session("code-on2", "g-on2", "c1", "openid offline_access_x", "sid-1")).await.unwrap();
        s.store.insert_code(&in_session("code-off", "g-off", "c2", "openid offline_access", "sid-1")).await.unwrap();
        s.store.insert_code(&in_session("code-other", "g-other", "c3", "openid", "sid-2")).await.unwrap();
        for (code, access, refresh, grant) in [
            ("code-on", "at-on", "rt-on", "g-on"),
            ("code-off", "at-off", "rt-off", "g-off"),
            ("code-other", "at-other", "rt-other", "g-other"),
        ] {
            let r = s.store.redeem_code(code, 120, "t", &issued(access, Some(refresh), grant)).await.unwrap();
            assert_eq!(r, Redemption::Redeemed, "{}", s.name);
        }
        // A family whose code was swept long ago is found through its refresh token's sid.
        let mut orphan = issued("at-orphan", Some("rt-orphan"), "g-orphan");
        if let Some(r) = orphan.refresh.as_mut() {
            r.sid = Some("sid-1".into());
            r.scope = "openid".into();
        }
        s.store.insert_tokens(&orphan).await.unwrap();

        let ended = s.store.end_session("sess", 200).await.unwrap().unwrap();
        assert_eq!(ended.session, session, "{}", s.name);
        let mut clients = ended.clients.clone();
        clients.sort();
        assert_eq!(clients, ["c1", "c2"], "{}: each client once", s.name);
        assert_eq!(ended.tokens_revoked, 4, "{}: at-on, rt-on, at-orphan, rt-orphan", s.name);
        for revoked in ["at-on", "at-orphan"] {
            assert_eq!(s.store.access_token(revoked).await.unwrap().unwrap().revoked_at, Some(200), "{}", s.name);
        }
        for revoked in ["rt-on", "rt-orphan"] {
            assert_eq!(s.store.refresh_token(revoked).await.unwrap().unwrap().revoked_at, Some(200), "{}", s.name);
        }
        for kept in ["at-off", "at-other"] {
            assert_eq!(s.store.access_token(kept).await.unwrap().unwrap().revoked_at, None, "{}: {kept}", s.name);
        }
        for kept in ["rt-off", "rt-other"] {
            assert_eq!(s.store.refresh_token(kept).await.unwrap().unwrap().revoked_at, None, "{}: {kept}", s.name);
        }
        assert!(s.store.session("sess").await.unwrap().is_none(), "{}", s.name);
        assert!(s.store.end_session("sess", 201).await.unwrap().is_none(), "{}: ended once", s.name);
        // Its code not yet redeemed never will be; the other session's code is untouched.
        assert_eq!(s.store.code("code-on2").await.unwrap().unwrap().session_ended_at, Some(200), "{}", s.name);
        let late = s.store.redeem_code("code-on2", 210, "t-late", &issued("at-late", None, "g-on2")).await.unwrap();
        assert_eq!(late, Redemption::SessionEnded { at: 200 }, "{}", s.name);
        assert_eq!(s.store.access_token("at-late").await.unwrap(), None, "{}: nothing stored", s.name);
        assert_eq!(s.store.code("code-other").await.unwrap().unwrap().session_ended_at, None, "{}", s.name);

        // The other session's record of c3 outlives nothing: once that session is gone it is swept.
        let swept = s.store.sweep(&SweepPolicy::new(1_000, 100, 1_000_000, 1000)).await.unwrap();
        assert_eq!(swept.session_clients, 1, "{}: sid-2 has no session", s.name);
    }
}
