//! The SQLite store: one file, WAL journal, `synchronous=FULL` so every commit is durable
//! before the call returns (a token is on disk before the response that carries it is sent).
//! Reads use a pool of connections (WAL readers do not block the writer); the writes of the
//! request paths go through one writer task that commits them in groups (`writer.rs`).

use crate::writer::Writer;
use crate::{BoxFuture, Schema};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and applies migrations (dev mode, admin commands).
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(url, Schema::Migrate).await
    }

    /// Opens the database; with `Schema::Require` the schema must be exactly the one this build
    /// knows (production: migrations are applied on purpose, with `candor migrate`).
    pub async fn open_with(url: &str, schema: Schema) -> Result<SqliteStore, StoreError> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(unavailable)?
            .create_if_missing(true)
            .journal_mode(if memory { SqliteJournalMode::Memory } else { SqliteJournalMode::Wal })
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let mut pool = SqlitePoolOptions::new();
        if memory {
            // Every connection to ":memory:" is a separate database: keep exactly one, forever.
            pool = pool.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None);
        } else {
            pool = pool.max_connections(8);
        }
        let pool = pool.connect_with(options).await.map_err(unavailable)?;
        let writer = Writer::start(pool.clone());
        SqliteStore { pool, writer }.prepare(schema).await
    }

    async fn applied_versions(&self) -> Result<Vec<i64>, StoreError> {
        let exists: Option<(String,)> =
            sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Runs `body` in a durable write transaction, grouped with concurrent ones (one fsync for all).
    async fn write<T, F>(&self, body: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut sqlx::SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        self.writer.write(body).await
    }
}

/// SQLite has one writer at a time: a transaction that writes already excludes every other.
async fn lock_grant(_tx: &mut sqlx::SqliteConnection, _grant_id: &str) -> StoreResult<()> {
    Ok(())
}

/// SQLite has no row locks to skip; sweeps from several processes are serialised as writers.
const SWEEP_LIMIT: &str = "LIMIT $2)";

crate::shared::store_impl!(SqliteStore, SqliteRow, sqlx::SqliteConnection);
