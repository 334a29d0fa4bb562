//! Durable stores implementing `candor_core::store`. SQLite is the embedded default.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo))]

pub mod sqlite;

pub use sqlite::{Schema, SqliteStore};

use candor_core::store::StoreError;

/// Opens the store named by a URL (`sqlite://path`, `sqlite::memory:`), applying migrations.
pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
    open_with(url, Schema::Migrate).await
}

/// Opens the store named by a URL, doing `schema` about its migrations.
pub async fn open_with(url: &str, schema: Schema) -> Result<SqliteStore, StoreError> {
    if url.starts_with("sqlite:") {
        SqliteStore::open_with(url, schema).await
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Err(StoreError::Unavailable("PostgreSQL is not supported yet by this build; use a sqlite:// store URL".into()))
    } else {
        Err(StoreError::Unavailable(format!(
            "store URL must start with sqlite:// (got {:?})",
            url.split(':').next().unwrap_or("")
        )))
    }
}
