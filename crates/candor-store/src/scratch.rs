//! Throwaway PostgreSQL schemas for tests and benchmarks: each gets its own schema in the
//! database named by a base URL, and the schema is dropped afterwards.

use candor_core::store::StoreError;
use sqlx::Connection;
use std::sync::atomic::{AtomicU64, Ordering};

/// The PostgreSQL database tests use, from `CANDOR_TEST_POSTGRES_URL`. Without it, tests that
/// need PostgreSQL are skipped, loudly; under CI (`CI` set) its absence is an error.
pub fn test_database_url() -> Result<Option<String>, String> {
    match std::env::var("CANDOR_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(Some(url)),
        _ if std::env::var_os("CI").is_some() => {
            Err("CANDOR_TEST_POSTGRES_URL is not set, and CI must run the PostgreSQL tests".into())
        }
        _ => Ok(None),
    }
}

/// A schema of its own in a PostgreSQL database; dropped (with everything in it) on drop.
#[derive(Debug)]
pub struct PgScratch {
    /// A store URL whose connections use only this schema.
    pub url: String,
    pub schema: String,
    base: String,
}

impl PgScratch {
    /// Creates a fresh schema named `candor_scratch_<pid>_<n>_<time>` in the database of `base_url`.
    pub async fn create(base_url: &str) -> Result<PgScratch, StoreError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let schema = format!(
            "candor_scratch_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            nanos % 1_000_000_000
        );
        let mut conn = sqlx::PgConnection::connect(base_url)
            .await
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", crate::redacted(base_url))))?;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let _ = conn.close().await;
        let sep = if base_url.contains('?') { '&' } else { '?' };
        let url = format!("{base_url}{sep}options=-c%20search_path%3D{schema}");
        Ok(PgScratch { url, schema, base: base_url.to_string() })
    }
}

impl Drop for PgScratch {
    fn drop(&mut self) {
        // Drop runs inside and outside runtimes alike: use a thread with its own small runtime.
        let base = self.base.clone();
        let schema = self.schema.clone();
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                    let _ = sqlx::query("SET lock_timeout = '10s'").execute(&mut conn).await;
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = done.join();
    }
}
