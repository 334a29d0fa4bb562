//! The SQLite store: one file, WAL journal, `synchronous=FULL` so every commit is durable
//! before the call returns (a token is on disk before the response that carries it is sent).
//! The request paths' reads by key run in place on kept connections (`reader.rs`); their writes
//! go through one writer thread that commits them in groups (`writer.rs`). sqlx's pool serves the
//! rest: migrations, listings, audit queries and admin writes.

use crate::Schema;
use crate::reader::Readers;
use crate::writer::Writer;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// sqlx's connections, for what is not on a request path (migrations, listings, audit queries,
/// admin writes).
const POOL_CONNECTIONS: u32 = 4;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Writer,
    readers: Arc<Readers>,
    /// A throwaway store's directory, removed when the last handle is dropped.
    _scratch: Option<Arc<tempfile::TempDir>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and applies migrations (dev mode, admin commands).
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(url, Schema::Migrate).await
    }

    /// Opens the database; with `Schema::Require` the schema must be exactly the one this build
    /// knows (production: migrations are applied on purpose, with `candor migrate`).
    ///
    /// `sqlite::memory:` (or `mode=memory`) is a throwaway store: a database file in a private
    /// temporary directory, removed when the store is dropped, and not synced to disk. It is a
    /// file, not SQLite's in-memory database, so that the writer thread and the readers share it.
    pub async fn open_with(url: &str, schema: Schema) -> Result<SqliteStore, StoreError> {
        let throwaway = url.contains(":memory:") || url.contains("mode=memory");
        let (options, scratch) = if throwaway {
            let dir = tempfile::Builder::new()
                .prefix("candor-store-")
                .tempdir()
                .map_err(|e| StoreError::Unavailable(format!("cannot create a temporary store: {e}")))?;
            (SqliteConnectOptions::new().filename(dir.path().join("candor.db")), Some(Arc::new(dir)))
        } else {
            (SqliteConnectOptions::from_str(url).map_err(unavailable)?, None)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if throwaway { SqliteSynchronous::Off } else { SqliteSynchronous::Full })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // At most 1 MiB of pages per connection (SQLite's default is 2 MiB), as for the
            // readers: the memory target (docs/performance.md) counts every connection's cache.
            .pragma("cache_size", "-1024");
        let path = options.get_filename().to_path_buf();
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        // The file exists now (the pool created it); the writer prepares its statements only when
        // the first write comes, after the schema step below.
        let writer = Writer::start(&path, !throwaway)?;
        let readers = Arc::new(Readers::new(&path));
        SqliteStore { pool, writer, readers, _scratch: scratch }.prepare(schema).await
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

    fn writes(&self) -> &Writer {
        &self.writer
    }

    fn reads(&self) -> &Readers {
        &self.readers
    }
}

impl SqliteStore {
    /// One statement of a sweep, as a job of the writer: a write transaction between the request
    /// paths' batches. Run from a pool connection, it took the database's write lock beside the
    /// writer, which then slept in SQLite's busy handler (1, 2, 5, 10… ms) for longer than the
    /// statement held the lock.
    async fn sweep_step(&self, step: &crate::shared::SweepStep, batch: u32) -> StoreResult<u64> {
        self.writer.sweep_step(step.sql, step.bound, batch, step.walk.clone()).await
    }
}

crate::shared::store_impl!(SqliteStore, SqliteRow, sqlx::SqliteConnection);
