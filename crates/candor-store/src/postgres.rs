//! The PostgreSQL store: several Candor nodes share one database. Every commit is durable when
//! the call returns (PostgreSQL's default `synchronous_commit = on`; Candor does not lower it).
//!
//! Exactly-once redemption and rotation rest on the conditional UPDATE (a concurrent transaction
//! waits for the row lock and re-checks the condition after the winner commits), at PostgreSQL's
//! default READ COMMITTED isolation. Transactions that change one grant's tokens also take a
//! transaction-scoped advisory lock on the grant, so a revocation never misses a token that a
//! concurrent rotation inserts.

use crate::{MapRow, Reads, Schema, Writes, sql};
use candor_core::device::{Decision, Poll};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres};
use std::future::Future;
use std::pin::Pin;
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

    fn writes(&self) -> &PgStore {
        self
    }

    fn reads(&self) -> &PgStore {
        self
    }

    /// Runs `body` in its own transaction and commits it (PostgreSQL groups concurrent commits itself).
    async fn write<T, F>(&self, body: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'c>>
            + Send
            + 'static,
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

impl PgStore {
    /// One statement of a sweep, through the pool. A sweep on one node skips the rows another
    /// node's sweep is deleting instead of waiting for them.
    async fn sweep_step(&self, step: &crate::shared::SweepStep, batch: u32) -> StoreResult<u64> {
        let sql = step.sql.replace("LIMIT $2)", "LIMIT $2 FOR UPDATE SKIP LOCKED)");
        let mut query = sqlx::query(&sql).bind(step.bound).bind(i64::from(batch));
        if let Some((below, above)) = &step.walk {
            query = query.bind(below).bind(above);
        }
        Ok(query.execute(&self.pool).await.map_err(crate::unavailable)?.rows_affected())
    }
}

crate::shared::store_impl!(PgStore, PgRow, sqlx::PgConnection);

/// Serialises, across nodes, the transactions that change one grant's tokens (redeem, rotate,
/// revoke), so a revocation cannot miss a token that a concurrent rotation inserts.
async fn lock_grant(tx: &mut PgConnection, grant_id: &str) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))")
        .bind(grant_id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    Ok(())
}

async fn execute(tx: &mut PgConnection, query: sqlx::query::Query<'_, Postgres, PgArguments>) -> StoreResult<u64> {
    Ok(query.execute(&mut *tx).await.map_err(unavailable)?.rows_affected())
}

/// Redeems a code or device code once, under its grant's lock: `claim` (a conditional UPDATE)
/// marks it redeemed and the tokens are stored with it, or `state` reads who redeemed it.
async fn redeem_once(
    tx: &mut PgConnection,
    [claim, state]: [&'static str; 2],
    hash: &str,
    now: UnixTime,
    trace: &str,
    issued: &IssuedTokens,
) -> StoreResult<Redemption> {
    lock_grant(tx, &issued.access.grant_id).await?;
    if execute(tx, sqlx::query(claim).bind(now).bind(trace).bind(hash)).await? == 0 {
        let redeemed: Option<(Option<i64>, Option<String>, Option<i64>)> =
            sqlx::query_as(state).bind(hash).fetch_optional(&mut *tx).await.map_err(unavailable)?;
        return Ok(match redeemed {
            Some((Some(redeemed_at), redeemed_trace, _)) => Redemption::AlreadyRedeemed { redeemed_at, redeemed_trace },
            Some((None, _, Some(at))) => Redemption::SessionEnded { at },
            _ => Redemption::Missing,
        });
    }
    insert_issued(tx, issued).await?;
    Ok(Redemption::Redeemed)
}

/// Inserts the tokens of one response inside the caller's transaction.
async fn insert_issued(tx: &mut PgConnection, issued: &IssuedTokens) -> StoreResult<()> {
    let a = &issued.access;
    let q = sqlx::query(sql::INSERT_ACCESS)
        .bind(&a.hash)
        .bind(&a.grant_id)
        .bind(&a.client_id)
        .bind(&a.user_id)
        .bind(&a.scope)
        .bind(a.issued_at)
        .bind(a.expires_at)
        .bind(a.revoked_at)
        .bind(&a.audience)
        .bind(a.format.as_str())
        .bind(&a.dpop_jkt);
    execute(tx, q).await?;
    if let Some(r) = &issued.refresh {
        let q = sqlx::query(sql::INSERT_REFRESH)
            .bind(&r.hash)
            .bind(&r.grant_id)
            .bind(&r.client_id)
            .bind(&r.user_id)
            .bind(&r.scope)
            .bind(r.auth_time)
            .bind(r.issued_at)
            .bind(r.expires_at)
            .bind(r.rotated_at)
            .bind(&r.rotated_trace)
            .bind(r.revoked_at)
            .bind(&r.issued_trace)
            .bind(crate::to_json(&r.resources)?)
            .bind(&r.dpop_jkt)
            .bind(&r.sid);
        execute(tx, q).await?;
    }
    if let Some(r) = &issued.audit {
        insert_audit(tx, r).await?;
    }
    Ok(())
}

async fn insert_audit(tx: &mut PgConnection, r: &AuditRecord) -> StoreResult<()> {
    let q = sqlx::query(sql::INSERT_AUDIT)
        .bind(&r.trace_id)
        .bind(r.at)
        .bind(&r.endpoint)
        .bind(&r.client_id)
        .bind(&r.grant_type)
        .bind(&r.reason)
        .bind(r.facts.to_string())
        .bind(&r.grant_id)
        .bind(&r.encoding);
    execute(tx, q).await.map(|_| ())
}

#[async_trait]
impl Reads for PgStore {
    async fn one<T: Send + 'static>(
        &self,
        statement: &'static str,
        key: &str,
        map: MapRow<T>,
    ) -> StoreResult<Option<T>> {
        let row = sqlx::query(statement).bind(key).fetch_optional(&self.pool).await.map_err(unavailable)?;
        row.as_ref().map(|row| map(row)).transpose()
    }

    async fn all<T: Send + 'static>(
        &self,
        statement: &'static str,
        keys: &[&str],
        map: MapRow<T>,
    ) -> StoreResult<Vec<T>> {
        let mut query = sqlx::query(statement);
        for key in keys {
            query = query.bind(*key);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(unavailable)?;
        rows.iter().map(|row| map(row)).collect()
    }
}

#[async_trait]
impl Writes for PgStore {
    async fn insert_code(&self, c: CodeRecord) -> StoreResult<()> {
        self.write(move |tx| {
            Box::pin(async move {
                let q = sqlx::query(sql::INSERT_CODE)
                    .bind(&c.hash)
                    .bind(&c.grant_id)
                    .bind(&c.client_id)
                    .bind(&c.user_id)
                    .bind(&c.redirect_uri)
                    .bind(c.redirect_uri_sent)
                    .bind(&c.scope)
                    .bind(&c.nonce)
                    .bind(c.code_challenge.as_ref().map(|ch| ch.value.as_str()))
                    .bind(c.code_challenge.as_ref().map(|ch| ch.method.as_str()))
                    .bind(c.auth_time)
                    .bind(c.issued_at)
                    .bind(c.expires_at)
                    .bind(c.redeemed_at)
                    .bind(&c.redeemed_trace)
                    .bind(&c.issued_trace)
                    .bind(crate::to_json(&c.resources)?)
                    .bind(&c.dpop_jkt)
                    .bind(&c.sid)
                    .bind(c.session_ended_at);
                execute(tx, q).await?;
                if let Some(sid) = &c.sid {
                    execute(tx, sqlx::query(sql::SESSION_SIGNED_IN_TO).bind(sid).bind(&c.client_id).bind(c.issued_at))
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn redeem_code(
        &self,
        hash: String,
        now: UnixTime,
        trace: String,
        issued: IssuedTokens,
    ) -> StoreResult<Redemption> {
        self.write(move |tx| {
            Box::pin(async move {
                redeem_once(tx, [sql::CLAIM_CODE, sql::CODE_REDEMPTION], &hash, now, &trace, &issued).await
            })
        })
        .await
    }

    async fn insert_device_code(&self, d: DeviceCodeRecord) -> StoreResult<()> {
        self.write(move |tx| {
            Box::pin(async move {
                let q = sqlx::query(sql::INSERT_DEVICE_CODE)
                    .bind(&d.hash)
                    .bind(&d.user_code_hash)
                    .bind(&d.grant_id)
                    .bind(&d.client_id)
                    .bind(&d.scope)
                    .bind(crate::to_json(&d.resources)?)
                    .bind(d.issued_at)
                    .bind(d.expires_at)
                    .bind(d.poll_interval)
                    .bind(d.last_polled_at)
                    .bind(d.status.as_str())
                    .bind(&d.user_id)
                    .bind(d.auth_time)
                    .bind(d.decided_at)
                    .bind(&d.decided_trace)
                    .bind(d.redeemed_at)
                    .bind(&d.redeemed_trace)
                    .bind(&d.issued_trace);
                execute(tx, q).await.map(|_| ())
            })
        })
        .await
    }

    async fn poll_device_code(&self, hash: String, now: UnixTime) -> StoreResult<Option<Poll>> {
        self.write(move |tx| {
            Box::pin(async move {
                let row: Option<(Option<i64>, i64)> = sqlx::query_as(sql::POLL_DEVICE_CODE)
                    .bind(now)
                    .bind(&hash)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                Ok(row.map(|(previous, interval)| Poll { previous, interval }))
            })
        })
        .await
    }

    async fn decide_device_code(
        &self,
        hash: String,
        decision: Decision,
        now: UnixTime,
        trace: String,
    ) -> StoreResult<bool> {
        self.write(move |tx| {
            Box::pin(async move {
                let (status, user_id, auth_time) = crate::decision_columns(&decision);
                let q = sqlx::query(sql::DECIDE_DEVICE_CODE)
                    .bind(status)
                    .bind(user_id)
                    .bind(auth_time)
                    .bind(now)
                    .bind(&trace)
                    .bind(&hash);
                Ok(execute(tx, q).await? == 1)
            })
        })
        .await
    }

    async fn redeem_device_code(
        &self,
        hash: String,
        now: UnixTime,
        trace: String,
        issued: IssuedTokens,
    ) -> StoreResult<Redemption> {
        self.write(move |tx| {
            Box::pin(async move {
                let statements = [sql::CLAIM_DEVICE_CODE, sql::DEVICE_CODE_REDEMPTION];
                redeem_once(tx, statements, &hash, now, &trace, &issued).await
            })
        })
        .await
    }

    async fn insert_tokens(&self, issued: IssuedTokens) -> StoreResult<()> {
        self.write(move |tx| Box::pin(async move { insert_issued(tx, &issued).await })).await
    }

    async fn insert_sibling(&self, rotated_hash: String, issued: IssuedTokens) -> StoreResult<bool> {
        self.write(move |tx| {
            Box::pin(async move {
                lock_grant(tx, &issued.access.grant_id).await?;
                let live: Option<(Option<i64>,)> = sqlx::query_as(sql::REFRESH_REVOKED_AT)
                    .bind(&rotated_hash)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                if !matches!(live, Some((None,))) {
                    return Ok(false);
                }
                insert_issued(tx, &issued).await?;
                Ok(true)
            })
        })
        .await
    }

    async fn rotate_refresh_token(
        &self,
        hash: String,
        now: UnixTime,
        trace: String,
        issued: IssuedTokens,
    ) -> StoreResult<Rotation> {
        self.write(move |tx| {
            Box::pin(async move {
                lock_grant(tx, &issued.access.grant_id).await?;
                let claimed = execute(tx, sqlx::query(sql::CLAIM_REFRESH).bind(now).bind(&trace).bind(&hash)).await?;
                if claimed == 0 {
                    let row = sqlx::query(sql::REFRESH_ROTATION)
                        .bind(&hash)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                    let Some(row) = row else { return Ok(Rotation::Missing) };
                    let rotated_at: Option<i64> = row.try_get("rotated_at").map_err(unavailable)?;
                    return Ok(match rotated_at {
                        Some(rotated_at) => Rotation::AlreadyRotated {
                            rotated_at,
                            rotated_trace: row.try_get("rotated_trace").map_err(unavailable)?,
                        },
                        None => Rotation::Revoked,
                    });
                }
                insert_issued(tx, &issued).await?;
                Ok(Rotation::Rotated)
            })
        })
        .await
    }

    async fn revoke_grant(&self, grant_id: String, now: UnixTime) -> StoreResult<u64> {
        self.write(move |tx| {
            Box::pin(async move {
                lock_grant(tx, &grant_id).await?;
                let mut n = 0;
                for statement in sql::REVOKE_GRANT {
                    n += execute(tx, sqlx::query(statement).bind(now).bind(&grant_id)).await?;
                }
                Ok(n)
            })
        })
        .await
    }

    async fn revoke_access_token(&self, hash: String, now: UnixTime) -> StoreResult<bool> {
        self.write(move |tx| {
            Box::pin(async move {
                execute(tx, sqlx::query(sql::REVOKE_ACCESS_TOKEN).bind(now).bind(&hash)).await.map(|n| n == 1)
            })
        })
        .await
    }

    async fn use_client_assertion(&self, client_id: String, jti: String, expires_at: UnixTime) -> StoreResult<bool> {
        self.write(move |tx| {
            Box::pin(async move {
                let q = sqlx::query(sql::USE_CLIENT_ASSERTION).bind(&client_id).bind(&jti).bind(expires_at);
                execute(tx, q).await.map(|n| n == 1)
            })
        })
        .await
    }

    async fn use_dpop_proof(&self, jkt: String, jti: String, expires_at: UnixTime) -> StoreResult<bool> {
        self.write(move |tx| {
            Box::pin(async move {
                let q = sqlx::query(sql::USE_DPOP_PROOF).bind(&jkt).bind(&jti).bind(expires_at);
                execute(tx, q).await.map(|n| n == 1)
            })
        })
        .await
    }

    async fn insert_session(&self, s: SessionRecord) -> StoreResult<()> {
        self.write(move |tx| {
            Box::pin(async move {
                let q = sqlx::query(sql::INSERT_SESSION)
                    .bind(&s.hash)
                    .bind(&s.user_id)
                    .bind(s.auth_time)
                    .bind(s.created_at)
                    .bind(s.expires_at)
                    .bind(&s.sid);
                execute(tx, q).await.map(|_| ())
            })
        })
        .await
    }

    async fn delete_session(&self, hash: String) -> StoreResult<()> {
        self.write(move |tx| {
            Box::pin(async move { execute(tx, sqlx::query(sql::DELETE_SESSION).bind(&hash)).await.map(|_| ()) })
        })
        .await
    }

    async fn end_session(&self, hash: String, now: UnixTime) -> StoreResult<Option<EndedSession>> {
        self.write(move |tx| {
            Box::pin(async move {
                let Some(row) =
                    sqlx::query(sql::END_SESSION).bind(&hash).fetch_optional(&mut *tx).await.map_err(unavailable)?
                else {
                    return Ok(None);
                };
                let session = crate::rows::session(&row)?;
                let (mut clients, mut tokens_revoked) = (Vec::new(), 0);
                if let Some(sid) = &session.sid {
                    clients = sqlx::query_scalar(sql::END_SESSION_CLIENTS)
                        .bind(sid)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                    execute(tx, sqlx::query(sql::END_SESSION_CODES).bind(now).bind(sid)).await?;
                    for statement in sql::END_SESSION_REVOKE {
                        tokens_revoked += execute(tx, sqlx::query(statement).bind(now).bind(sid)).await?;
                    }
                }
                Ok(Some(EndedSession { session, clients, tokens_revoked }))
            })
        })
        .await
    }

    async fn insert_interaction(&self, i: InteractionRecord) -> StoreResult<()> {
        self.write(move |tx| {
            Box::pin(async move {
                let q = sqlx::query(sql::INSERT_INTERACTION)
                    .bind(&i.hash)
                    .bind(i.request.to_string())
                    .bind(&i.browser_hash)
                    .bind(&i.csrf_hash)
                    .bind(&i.login_user_id)
                    .bind(i.login_time)
                    .bind(i.created_at)
                    .bind(i.expires_at)
                    .bind(&i.login_sid);
                execute(tx, q).await.map(|_| ())
            })
        })
        .await
    }

    async fn record_login(&self, hash: String, user_id: String, at: UnixTime, sid: Option<String>) -> StoreResult<()> {
        self.write(move |tx| {
            Box::pin(async move {
                let q = sqlx::query(sql::RECORD_LOGIN).bind(&user_id).bind(at).bind(&hash).bind(&sid);
                execute(tx, q).await.map(|_| ())
            })
        })
        .await
    }

    async fn insert_pushed_request(&self, p: candor_core::model::PushedRequest) -> StoreResult<()> {
        self.write(move |tx| {
            Box::pin(async move {
                let q = sqlx::query(sql::INSERT_PUSHED_REQUEST)
                    .bind(&p.hash)
                    .bind(&p.client_id)
                    .bind(&p.params)
                    .bind(p.expires_at);
                execute(tx, q).await.map(|_| ())
            })
        })
        .await
    }

    async fn take_pushed_request(&self, hash: String, now: UnixTime) -> StoreResult<candor_core::store::Taking> {
        use candor_core::store::Taking;
        self.write(move |tx| {
            Box::pin(async move {
                let row = sqlx::query(sql::TAKE_PUSHED_REQUEST)
                    .bind(now)
                    .bind(&hash)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                if let Some(row) = row {
                    return Ok(Taking::Taken(crate::rows::pushed(&row)?));
                }
                let used: Option<(Option<i64>,)> = sqlx::query_as(sql::PUSHED_REQUEST_USED_AT)
                    .bind(&hash)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                Ok(match used {
                    Some((Some(used_at),)) => Taking::AlreadyUsed { used_at },
                    _ => Taking::Missing,
                })
            })
        })
        .await
    }

    async fn take_interaction(&self, hash: String) -> StoreResult<bool> {
        self.write(move |tx| {
            Box::pin(async move { Ok(execute(tx, sqlx::query(sql::TAKE_INTERACTION).bind(&hash)).await? > 0) })
        })
        .await
    }

    async fn revoke_consent(&self, user_id: String, client_id: String, now: UnixTime) -> StoreResult<bool> {
        self.write(move |tx| {
            Box::pin(async move {
                let n = execute(tx, sqlx::query(sql::DELETE_CONSENT).bind(&user_id).bind(&client_id)).await?;
                execute(tx, sqlx::query(sql::REVOKE_CONSENTED_TOKENS).bind(now).bind(&user_id).bind(&client_id))
                    .await?;
                Ok(n > 0)
            })
        })
        .await
    }

    async fn grant_consent(
        &self,
        user_id: String,
        client_id: String,
        scopes: Vec<String>,
        now: UnixTime,
    ) -> StoreResult<()> {
        self.write(move |tx| {
            Box::pin(async move {
                for s in &scopes {
                    execute(tx, sqlx::query(sql::GRANT_CONSENT).bind(&user_id).bind(&client_id).bind(s).bind(now))
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn record_audit(&self, r: AuditRecord) -> StoreResult<()> {
        self.write(move |tx| Box::pin(async move { insert_audit(tx, &r).await })).await
    }
}

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
