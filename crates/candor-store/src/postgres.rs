//! The PostgreSQL store: several Candor nodes share one database. Every commit is durable when
//! the call returns (PostgreSQL's default `synchronous_commit = on`; Candor does not lower it).
//!
//! Exactly-once redemption and rotation rest on the conditional UPDATE (a concurrent transaction
//! waits for the row lock and re-checks the condition after the winner commits), at PostgreSQL's
//! default READ COMMITTED isolation. Transactions that change one grant's tokens also take a
//! transaction-scoped advisory lock on the grant, so a revocation never misses a token that a
//! concurrent rotation inserts.

use crate::{BoxFuture, Schema};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per node unless the URL says otherwise (`?max_connections=N`, read by Candor).
const DEFAULT_MAX_CONNECTIONS: u32 = 16;

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `postgres://…` and does `schema` about the migrations. The URL may carry
    /// libpq's `options` (e.g. `?options=-c%20search_path%3Dcandor` to use a schema other than
    /// `public`) and Candor's own `max_connections` (the pool size of this node).
    pub async fn open_with(url: &str, schema: Schema) -> Result<PgStore, StoreError> {
        let (url, max_connections) = split_pool_size(url)?;
        let options = PgConnectOptions::from_str(&url).map_err(unavailable)?.application_name("candor");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        PgStore { pool }.prepare(schema).await
    }

    async fn applied_versions(&self) -> Result<Vec<i64>, StoreError> {
        // to_regclass follows the connection's search_path, like the migrator does.
        let exists: (Option<String>,) = sqlx::query_as("SELECT to_regclass('_sqlx_migrations')::text")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        if exists.0.is_none() {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `body` in its own transaction and commits it (PostgreSQL groups concurrent commits itself).
    async fn write<T, F>(&self, body: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut sqlx::PgConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        match body(&mut tx).await {
            Ok(v) => {
                tx.commit().await.map_err(unavailable)?;
                Ok(v)
            }
            Err(e) => {
                // Dropping the transaction also rolls it back; this returns the connection sooner.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
}

/// Takes Candor's `max_connections` out of the URL (libpq does not know it).
fn split_pool_size(url: &str) -> Result<(String, u32), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), DEFAULT_MAX_CONNECTIONS));
    };
    let mut max = DEFAULT_MAX_CONNECTIONS;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("max_connections", v)) => {
                max = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    StoreError::Unavailable(format!(
                        "max_connections in the store URL must be a positive number, got {v:?}"
                    ))
                })?;
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    Ok((url, max))
}

/// Serialises, across nodes, the transactions that change one grant's tokens.
async fn lock_grant(tx: &mut sqlx::PgConnection, grant_id: &str) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))")
        .bind(grant_id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// A sweep on one node skips the rows another node's sweep is deleting instead of waiting.
const SWEEP_LIMIT: &str = "LIMIT $2 FOR UPDATE SKIP LOCKED)";

crate::shared::store_impl!(PgStore, PgRow, sqlx::PgConnection);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_size_is_read_from_the_url_and_removed() {
        let (url, n) = split_pool_size("postgres://u@h/db?max_connections=4&sslmode=disable").unwrap();
        assert_eq!((url.as_str(), n), ("postgres://u@h/db?sslmode=disable", 4));
        let (url, n) = split_pool_size("postgres://u@h/db").unwrap();
        assert_eq!((url.as_str(), n), ("postgres://u@h/db", DEFAULT_MAX_CONNECTIONS));
        assert!(split_pool_size("postgres://u@h/db?max_connections=0").is_err());
    }
}
