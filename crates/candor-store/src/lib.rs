//! Durable stores implementing `candor_core::store`: SQLite (the embedded default) and
//! PostgreSQL (several Candor nodes on one database). Both share the reads, admin writes and row
//! mapping (`shared.rs`) and the statements of the request paths' writes (`sql.rs`); each runs
//! those writes its own way (`Writes`: a transaction per call on PostgreSQL, the group-commit
//! writer thread on SQLite).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo))]

mod native;
mod reader;
mod rows;
mod shared;
mod sql;
mod writer;

pub mod postgres;
pub mod scratch;
pub mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use candor_core::audit::AuditRecord;
use candor_core::clock::UnixTime;
use candor_core::device::{Decision, Poll};
use candor_core::model::{CodeRecord, DeviceCodeRecord, InteractionRecord, IssuedTokens, PushedRequest, SessionRecord};
use candor_core::store::{Redemption, Rotation, Store, StoreError, StoreResult};
use std::sync::Arc;

/// Maps a row, whichever driver read it.
pub(crate) type MapRow<T> = for<'r> fn(&'r (dyn rows::Col + 'r)) -> StoreResult<T>;

/// The reads of the request paths: rows found by key (`sql.rs`) and mapped by `rows.rs`.
/// PostgreSQL runs them on its pool; SQLite in place, on the caller's thread (`reader.rs`).
#[async_trait]
pub(crate) trait Reads: Send + Sync {
    /// The row `statement` finds for `key`, if any.
    async fn one<T: Send + 'static>(
        &self,
        statement: &'static str,
        key: &str,
        map: MapRow<T>,
    ) -> StoreResult<Option<T>>;
    /// Every row `statement` finds for `keys` (`$1`, `$2`, … in order).
    async fn all<T: Send + 'static>(
        &self,
        statement: &'static str,
        keys: &[&str],
        map: MapRow<T>,
    ) -> StoreResult<Vec<T>>;
}

/// The write transactions of the request paths (one durable transaction each), which each backend
/// runs its own way: PostgreSQL in a transaction per call on its pool, SQLite on one writer
/// thread that commits concurrent calls together. Both run the statements of `sql.rs`.
#[async_trait]
pub(crate) trait Writes: Send + Sync {
    async fn insert_code(&self, c: CodeRecord) -> StoreResult<()>;
    async fn redeem_code(
        &self,
        hash: String,
        now: UnixTime,
        trace: String,
        issued: IssuedTokens,
    ) -> StoreResult<Redemption>;
    async fn insert_device_code(&self, d: DeviceCodeRecord) -> StoreResult<()>;
    async fn poll_device_code(&self, hash: String, now: UnixTime) -> StoreResult<Option<Poll>>;
    async fn decide_device_code(
        &self,
        hash: String,
        decision: Decision,
        now: UnixTime,
        trace: String,
    ) -> StoreResult<bool>;
    async fn redeem_device_code(
        &self,
        hash: String,
        now: UnixTime,
        trace: String,
        issued: IssuedTokens,
    ) -> StoreResult<Redemption>;
    async fn insert_tokens(&self, issued: IssuedTokens) -> StoreResult<()>;
    async fn insert_sibling(&self, rotated_hash: String, issued: IssuedTokens) -> StoreResult<bool>;
    async fn rotate_refresh_token(
        &self,
        hash: String,
        now: UnixTime,
        trace: String,
        issued: IssuedTokens,
    ) -> StoreResult<Rotation>;
    async fn revoke_grant(&self, grant_id: String, now: UnixTime) -> StoreResult<u64>;
    async fn revoke_access_token(&self, hash: String, now: UnixTime) -> StoreResult<bool>;
    async fn use_client_assertion(&self, client_id: String, jti: String, expires_at: UnixTime) -> StoreResult<bool>;
    async fn use_dpop_proof(&self, jkt: String, jti: String, expires_at: UnixTime) -> StoreResult<bool>;
    async fn insert_pushed_request(&self, p: PushedRequest) -> StoreResult<()>;
    async fn take_pushed_request(&self, hash: String, now: UnixTime) -> StoreResult<candor_core::store::Taking>;
    async fn insert_session(&self, s: SessionRecord) -> StoreResult<()>;
    async fn delete_session(&self, hash: String) -> StoreResult<()>;
    async fn end_session(&self, hash: String, now: UnixTime) -> StoreResult<Option<candor_core::store::EndedSession>>;
    async fn insert_interaction(&self, i: InteractionRecord) -> StoreResult<()>;
    async fn record_login(&self, hash: String, user_id: String, at: UnixTime, sid: Option<String>) -> StoreResult<()>;
    async fn take_interaction(&self, hash: String) -> StoreResult<bool>;
    async fn revoke_consent(&self, user_id: String, client_id: String, now: UnixTime) -> StoreResult<bool>;
    async fn grant_consent(
        &self,
        user_id: String,
        client_id: String,
        scopes: Vec<String>,
        now: UnixTime,
    ) -> StoreResult<()>;
    async fn record_audit(&self, r: AuditRecord) -> StoreResult<()>;
}

/// The columns a device decision sets: status, user, auth_time.
pub(crate) fn decision_columns(d: &Decision) -> (&'static str, &str, Option<UnixTime>) {
    match d {
        Decision::Approved { user_id, auth_time } => ("approved", user_id, Some(*auth_time)),
        Decision::Denied { user_id } => ("denied", user_id, None),
    }
}

/// What opening a store does about its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Apply missing migrations.
    Migrate,
    /// Require exactly the migrations this build knows.
    Require,
}

/// An opened store of either kind.
#[derive(Debug, Clone)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl AnyStore {
    /// The store behind the traits the server uses.
    pub fn into_store(self) -> Arc<dyn Store> {
        match self {
            AnyStore::Sqlite(s) => Arc::new(s),
            AnyStore::Postgres(s) => Arc::new(s),
        }
    }

    /// Applies every migration this build knows; returns the versions now applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.migrate().await,
            AnyStore::Postgres(s) => s.migrate().await,
        }
    }

    pub async fn check_schema(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.check_schema().await,
            AnyStore::Postgres(s) => s.check_schema().await,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::Postgres(_) => "postgres",
        }
    }
}

/// Opens the store named by a URL (`sqlite://path`, `sqlite::memory:`, `postgres://…`),
/// applying migrations.
pub async fn open(url: &str) -> Result<AnyStore, StoreError> {
    open_with(url, Schema::Migrate).await
}

/// Opens the store named by a URL, doing `schema` about its migrations.
pub async fn open_with(url: &str, schema: Schema) -> Result<AnyStore, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(AnyStore::Sqlite(SqliteStore::open_with(url, schema).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(AnyStore::Postgres(PgStore::open_with(url, schema).await?))
    } else {
        Err(StoreError::Unavailable(format!(
            "store URL must start with sqlite:// or postgres:// (got {:?})",
            url.split(':').next().unwrap_or("")
        )))
    }
}

/// Compares the applied migrations with the ones this build knows.
fn check_versions(applied: &[i64], migrator: &sqlx::migrate::Migrator) -> Result<(), StoreError> {
    let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    if let Some(unknown) = applied.iter().find(|v| !known.contains(v)) {
        return Err(StoreError::Unavailable(format!(
            "the store's schema has migration {unknown}, which this Candor does not know (it knows up to {}): upgrade Candor",
            known.last().copied().unwrap_or(0)
        )));
    }
    let missing: Vec<i64> = known.iter().copied().filter(|v| !applied.contains(v)).collect();
    if !missing.is_empty() {
        return Err(StoreError::Unavailable(format!(
            "the store's schema is {} (missing migrations {missing:?}): run `candor migrate` with the same configuration",
            applied.last().map_or("empty".to_string(), |v| format!("at {v}"))
        )));
    }
    Ok(())
}

fn unavailable(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| corrupt("encoding", e))
}

/// The store URL for messages and logs: a password in it is replaced by `***`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_store_urls() {
        assert_eq!(
            redacted("postgres://candor:s3cr%40t@db:5432/candor?x=1"),
            "postgres://candor:***@db:5432/candor?x=1"
        );
        assert_eq!(redacted("postgres://candor@db/candor"), "postgres://candor@db/candor");
        assert_eq!(redacted("sqlite://./.candor/dev.db"), "sqlite://./.candor/dev.db");
        assert_eq!(redacted("sqlite::memory:"), "sqlite::memory:");
    }
}
