//! Upgrading a SQLite store made before codes and tokens carried their time of issue: its rows
//! survive the table rebuilds of migration 3, are still found by their old keys, and their grants
//! and users can still be revoked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use candor_core::tokens::{Secret, SecretKind, hash_secret};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use std::str::FromStr;

const BEFORE: [(&str, &str); 2] = [
    ("20261123000001_init.sql", include_str!("../migrations/sqlite/20261123000001_init.sql")),
    ("20261123000002_audit.sql", include_str!("../migrations/sqlite/20261123000002_audit.sql")),
];

async fn rows(pool: &sqlx::SqlitePool, sql: &str) -> Vec<String> {
    sqlx::query_scalar(sql).fetch_all(pool).await.unwrap()
}

#[tokio::test]
async fn a_store_from_before_time_ordered_keys_keeps_its_tokens_and_their_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("before");
    std::fs::create_dir(&migrations).unwrap();
    for (name, sql) in BEFORE {
        std::fs::write(migrations.join(name), sql).unwrap();
    }
    let url = format!("sqlite://{}/old.db", dir.path().display());
    let options = SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    sqlx::migrate::Migrator::new(migrations.as_path()).await.unwrap().run(&pool).await.unwrap();

    // Values of the old shape were keyed by their digest alone (64 hex characters).
    let (code, user_token, client_token, refresh) = (
        hash_secret("old code"),
        hash_secret("old user token"),
        hash_secret("old client token"),
        hash_secret("old refresh"),
    );
    assert_eq!(code.len(), 64);
    sqlx::query(
        "INSERT INTO codes VALUES ($1, 'g1', 'c1', 'u1', 'https://a/cb', 1, 'openid', NULL, 'ch', 'S256', 100, 100, 9999999999, NULL, NULL, 't1')",
    )
    .bind(&code)
    .execute(&pool)
    .await
    .unwrap();
    for (hash, grant, user) in [(&user_token, "g1", Some("u1")), (&client_token, "g2", None)] {
        sqlx::query("INSERT INTO access_tokens VALUES ($1, $2, 'c1', $3, 'openid', 100, 9999999999, NULL)")
            .bind(hash)
            .bind(grant)
            .bind(user)
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO refresh_tokens VALUES ($1, 'g1', 'c1', 'u1', 'openid', 100, 100, 9999999999, NULL, NULL, NULL, 't1')")
        .bind(&refresh)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO users VALUES ('u1', 'alice', 'x', NULL, NULL, 0, 0, 100)").execute(&pool).await.unwrap();
    pool.close().await;

    let store = candor_store::open_with(&url, candor_store::Schema::Migrate).await.unwrap().into_store();
    let code_row = store.code(&code).await.unwrap().expect("the old code survives");
    assert_eq!(code_row.grant_id, "g1");
    assert_eq!(code_row.code_challenge.map(|c| (c.value, c.method.as_str())), Some(("ch".to_string(), "S256")));
    let at = store.access_token(&user_token).await.unwrap().expect("the old access token survives");
    assert_eq!((at.user_id.as_deref(), at.revoked_at), (Some("u1"), None));
    assert_eq!(store.access_token(&client_token).await.unwrap().unwrap().user_id, None);
    assert_eq!(store.refresh_token(&refresh).await.unwrap().unwrap().grant_id, "g1");

    // New values (time first) and old ones live side by side, and revocation reaches both.
    let new = Secret::generate(SecretKind::AccessToken).unwrap();
    assert_eq!(new.hash.len(), 76);
    let check = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO access_tokens (hash, grant_id, client_id, user_id, scope, issued_at, expires_at, revoked_at)
         VALUES ($1, 'g3', 'c1', 'u1', 'openid', 200, 9999999999, NULL)",
    )
    .bind(&new.hash)
    .execute(&check)
    .await
    .unwrap();
    assert!(store.remove_user("u1", 300).await.unwrap());
    for key in [&user_token, &new.hash] {
        assert_eq!(store.access_token(key).await.unwrap().unwrap().revoked_at, Some(300), "{key}");
    }
    assert_eq!(store.refresh_token(&refresh).await.unwrap().unwrap().revoked_at, Some(300));
    assert_eq!(store.access_token(&client_token).await.unwrap().unwrap().revoked_at, None);

    // The shape the migration promises: rows in their key's B-tree, no unused expiry indexes,
    // and the user index only for tokens that have a user.
    let without_rowid = rows(
        &check,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%WITHOUT ROWID%' ORDER BY name",
    )
    .await;
    assert_eq!(without_rowid, ["access_tokens", "codes", "refresh_tokens"]);
    let indexes =
        rows(&check, "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").await;
    assert!(!indexes.iter().any(|i| i.ends_with("tokens_expiry")), "{indexes:?}");
    let user_index = rows(&check, "SELECT sql FROM sqlite_master WHERE name = 'access_tokens_user'").await;
    assert!(user_index[0].contains("WHERE user_id IS NOT NULL"), "{user_index:?}");
    // ... which the revocation by user still uses (`user_id = ?` implies `IS NOT NULL`).
    let plan = sqlx::query(
        "EXPLAIN QUERY PLAN UPDATE access_tokens SET revoked_at = 1 WHERE user_id = 'u1' AND revoked_at IS NULL",
    )
    .fetch_all(&check)
    .await
    .unwrap();
    let plan: Vec<String> = plan.iter().map(|r| sqlx::Row::get::<String, _>(r, "detail")).collect();
    assert!(plan.iter().any(|d| d.contains("USING INDEX access_tokens_user")), "{plan:?}");
}
