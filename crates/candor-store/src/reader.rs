//! SQLite's reads on the request paths, run in place on the caller's thread.
//!
//! A read by key is a few µs of SQLite work when its pages are cached, and in WAL mode a reader
//! never waits for the writer. Handing it to another thread and back (as sqlx does, one thread per
//! connection) costs more than the read: on the 2-core benchmark machine a client lookup took
//! 92 µs that way, and running the token endpoint's client lookup in place raised its throughput
//! by a quarter (docs/performance.md). The price: a read whose page is not in the operating
//! system's cache holds one runtime thread for a disk read. The connections are kept in a small
//! stack; a caller that finds it empty opens another.

use crate::native::{all_rows, db_error, first_row, open_existing};
use crate::{MapRow, Reads};
use async_trait::async_trait;
use candor_core::store::StoreResult;
use rusqlite::Connection;
use rusqlite::types::ToSql;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Idle connections kept (at most one read runs per runtime thread, plus the blocking threads).
const IDLE: usize = 8;
/// Prepared statements kept per connection (every read statement fits).
const STATEMENT_CACHE: usize = 32;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Readers {
    /// Readers of the database file at `path` (it must exist; connections open when needed).
    pub(crate) fn new(path: &Path) -> Readers {
        Readers { path: path.to_path_buf(), idle: Mutex::new(Vec::new()) }
    }

    fn open(&self) -> StoreResult<Connection> {
        let conn = open_existing(&self.path)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // WAL readers wait only in rare cases (another process recovering the WAL index).
        conn.busy_timeout(Duration::from_secs(5)).map_err(db_error)?;
        // 1 MiB of pages (SQLite's default is 2 MiB): the hot pages fit, the rest is in the OS
        // page cache anyway, and the memory target counts every connection's cache.
        conn.execute_batch("PRAGMA cache_size = -1024; PRAGMA query_only = ON").map_err(db_error)?;
        Ok(conn)
    }

    fn with<T>(&self, read: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let kept = match self.idle.lock() {
            Ok(mut idle) => idle.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        let conn = match kept {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = read(&conn);
        let mut idle = match self.idle.lock() {
            Ok(idle) => idle,
            Err(poisoned) => poisoned.into_inner(),
        };
        if idle.len() < IDLE {
            idle.push(conn);
        }
        result
    }
}

#[async_trait]
impl Reads for Readers {
    async fn one<T: Send + 'static>(
        &self,
        statement: &'static str,
        key: &str,
        map: MapRow<T>,
    ) -> StoreResult<Option<T>> {
        self.with(|conn| first_row(conn, statement, &[&key], |row| map(row)))
    }

    async fn all<T: Send + 'static>(
        &self,
        statement: &'static str,
        keys: &[&str],
        map: MapRow<T>,
    ) -> StoreResult<Vec<T>> {
        let args: Vec<&dyn ToSql> = keys.iter().map(|k| k as &dyn ToSql).collect();
        self.with(|conn| all_rows(conn, statement, &args, |row| map(row)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::execute;

    #[tokio::test]
    async fn readers_see_every_commit_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let writer = Connection::open(&path).unwrap();
        writer.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)").unwrap();
        let readers = Readers::new(&path);
        let value = |row: &dyn crate::rows::Col| row.text("v");
        assert_eq!(readers.one("SELECT v FROM t WHERE k = $1", "a", value).await.unwrap(), None);
        for i in 0..3 {
            // Committed by another connection: the next read sees it, on a kept connection.
            execute(&writer, "INSERT OR REPLACE INTO t (k, v) VALUES ($1, $2)", &[&"a", &format!("v{i}")]).unwrap();
            assert_eq!(readers.one("SELECT v FROM t WHERE k = $1", "a", value).await.unwrap(), Some(format!("v{i}")));
        }
        execute(&writer, "INSERT INTO t (k, v) VALUES ($1, $2)", &[&"b", &"w"]).unwrap();
        let both =
            readers.all("SELECT v FROM t WHERE k >= $1 AND k <= $2 ORDER BY k", &["a", "b"], value).await.unwrap();
        assert_eq!(both, ["v2", "w"]);
        let refused = readers.with(|conn| execute(conn, "DELETE FROM t WHERE k = $1", &[&"a"])).unwrap_err();
        assert!(refused.to_string().contains("readonly"), "{refused}");
    }
}
