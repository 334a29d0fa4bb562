//! SQLite's writer: one thread owns the one write connection and runs the write transactions of
//! many concurrent requests in one SQLite transaction (group commit), each inside its own
//! savepoint, and acknowledges them only after the one `COMMIT` (and its fsync under
//! `synchronous=FULL`) has returned.
//!
//! Why a thread of its own, with its statements run in place: SQLite allows one writer at a time
//! and a durable commit costs an fsync, so writes are serialised anyway. Run through sqlx, each
//! statement is a round trip to the connection's worker thread (two thread wake-ups), and those
//! round trips, not SQLite, were most of the cost of a token request (see docs/performance.md).
//! Here a request costs one hand-over to this thread and one answer back, whatever its number of
//! statements, and statements are prepared once (a per-connection statement cache).
//!
//! The requests that arrive while a batch is being written form the next batch, so the fsync is
//! shared. While requests overlap (the last batch held more than one job), the writer that has a
//! job also waits a little for more before it commits (`Linger`): for each next one at most
//! `LINGER_GAP`, and in all no longer than a commit has lately taken, nor than `LINGER_MAX`; a
//! lone caller never waits. Fewer, larger commits mean fewer fsyncs, and an fsync can cost more
//! than its own latency: on one 2-core VM of docs/performance.md, the host's work for the disk
//! counted against the VM's processor quota, and at 1 500 fsyncs per second the whole VM was
//! stopped for 10–15 ms in every 100 ms, which made the token endpoint's p99. Where a commit is
//! cheap (a throwaway database without fsync, a fast disk), waiting longer than it takes only
//! delays everyone; waiting at most what the commit it may save costs is never worse than twice
//! the better choice (the ski-rental bound). The bounds were measured on two machines (a wait of
//! 50/300 µs against 25/150 µs: the latter as good on the first, a fifth more throughput on the
//! second at the same p99). PostgreSQL's `commit_delay` is the same idea.
//!
//! A job that fails is rolled back to its savepoint without touching the others; a failed
//! `COMMIT` fails every job of the batch (nothing of it is stored).

use crate::native::{all_rows, db_error, execute, failure, first_row, open_existing};
use crate::rows::Col;
use crate::{Writes, sql};
use async_trait::async_trait;
use candor_core::audit::AuditRecord;
use candor_core::clock::UnixTime;
use candor_core::device::{Decision, Poll};
use candor_core::model::{CodeRecord, DeviceCodeRecord, InteractionRecord, IssuedTokens, PushedRequest, SessionRecord};
use candor_core::store::{EndedSession, Redemption, Rotation, StoreError, StoreResult};
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// At most this many jobs share one transaction (bounds a batch's latency and its WAL growth).
const MAX_BATCH: usize = 256;
/// Jobs waiting for the writer; when full, callers wait (back-pressure, not unbounded memory).
const QUEUE: usize = 4096;
/// While requests overlap, the writer that has a job waits at most this long for each next one
/// before it commits...
const LINGER_GAP: Duration = Duration::from_micros(25);
/// ...and never longer than this after the first (what a request can lose to the gathering).
const LINGER_MAX: Duration = Duration::from_micros(150);
/// How long the checkpointer lets commits gather before copying them into the database file.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(100);
/// The WAL size (pages, 40 MiB) at which the writer checkpoints by itself. The WAL starts over
/// only after a checkpoint that leaves nothing uncopied when the writer begins a transaction,
/// which under steady load only the writer's own checkpoint (right after a commit) achieves; by
/// then the checkpointer has copied all but its last round's pages, so the writer's share is
/// small. SQLite's default is 1000 pages, with the writer doing all of the copying.
const BACKSTOP_CHECKPOINT_PAGES: u32 = 10_000;
/// Prepared statements kept by the writer's connection (every statement it runs fits).
const STATEMENT_CACHE: usize = 64;

/// A write transaction's body: runs on the writer's connection, inside a savepoint.
trait Job: Send {
    fn run(self: Box<Self>, conn: &Connection) -> Done;
    /// The job could not run (no transaction could be started): tell its caller why.
    fn fail(self: Box<Self>, error: StoreError);
}

/// Answers a job's caller once the batch's commit is known (`Some(error)`: it failed).
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

/// A job that ran: whether its writes are kept, and how to answer its caller once the batch's
/// commit is known.
struct Done {
    keep: bool,
    answer: Answer,
}

struct Typed<T, F> {
    body: F,
    reply: oneshot::Sender<StoreResult<T>>,
    /// The job's place in the queue, given back once it has run.
    _place: OwnedSemaphorePermit,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Done {
        let Typed { body, reply, _place } = *self;
        let result = body(conn);
        Done {
            keep: result.is_ok(),
            answer: Box::new(move |commit_error: Option<&str>| {
                let _ = reply.send(match (result, commit_error) {
                    (Err(e), _) => Err(e),
                    (Ok(v), None) => Ok(v),
                    (Ok(_), Some(e)) => Err(StoreError::Unavailable(format!("the commit failed: {e}"))),
                });
            }),
        }
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// The handle the store keeps; cloning it shares the one writer.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: Sender<Box<dyn Job>>,
    /// `QUEUE` places: a job takes one before it is queued and gives it back once it has run.
    room: Arc<Semaphore>,
}

impl Writer {
    /// Opens the write connection to the database file at `path` (already created and migrated)
    /// and starts the writer thread; it ends when the last handle is dropped. `durable`: every
    /// commit is on disk before it is acknowledged (`synchronous=FULL`); off only for a throwaway
    /// database.
    pub(crate) fn start(path: &Path, durable: bool) -> StoreResult<Writer> {
        let conn = open_existing(path)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.busy_timeout(Duration::from_secs(10)).map_err(db_error)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(db_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "{}: cannot use the WAL journal (got {mode})",
                path.display()
            )));
        }
        conn.execute_batch(if durable { "PRAGMA synchronous = FULL" } else { "PRAGMA synchronous = OFF" })
            .map_err(db_error)?;
        conn.execute_batch("PRAGMA foreign_keys = ON").map_err(db_error)?;
        // Each job runs in a savepoint, and SQLite keeps the pages a savepoint changes in a
        // sub-journal, so that it can roll back to it. By default that sub-journal spills to a
        // temporary file past 64 KiB, which a batch of a few jobs exceeds: the writer then wrote
        // every changed page twice, once to the WAL and once to a file created and deleted for
        // every batch. Kept in memory, it costs a copy of each page (docs/performance.md).
        conn.execute_batch("PRAGMA temp_store = MEMORY").map_err(db_error)?;
        // The checkpointer thread copies the WAL into the database file; the writer checkpoints
        // by itself only to let the WAL start over (see BACKSTOP_CHECKPOINT_PAGES).
        conn.execute_batch(&format!("PRAGMA wal_autocheckpoint = {BACKSTOP_CHECKPOINT_PAGES}")).map_err(db_error)?;
        let checkpointer = open_existing(path)?;
        checkpointer.busy_timeout(Duration::from_secs(10)).map_err(db_error)?;
        checkpointer
            .execute_batch(if durable { "PRAGMA synchronous = FULL" } else { "PRAGMA synchronous = OFF" })
            .map_err(db_error)?;
        let (committed, commits) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("candor-sqlite-checkpointer".into())
            .spawn(move || checkpoint(checkpointer, commits))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the store's checkpointer thread: {e}")))?;
        let (jobs, queue) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("candor-sqlite-writer".into())
            .spawn(move || run(conn, queue, committed))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the store's writer thread: {e}")))?;
        Ok(Writer { jobs, room: Arc::new(Semaphore::new(QUEUE)) })
    }

    /// Runs one of a sweep's statements (`shared::sweep_steps`) as a job of its own.
    pub(crate) async fn sweep_step(
        &self,
        sql: &'static str,
        bound: i64,
        batch: u32,
        walk: Option<(String, String)>,
    ) -> StoreResult<u64> {
        let batch = i64::from(batch);
        self.write(move |conn| match &walk {
            Some((below, above)) => execute(conn, sql, &[&bound, &batch, below, above]),
            None => execute(conn, sql, &[&bound, &batch]),
        })
        .await
    }

    /// Runs `body` as (part of) a durable write transaction; returns once it is committed.
    async fn write<T, F>(&self, body: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let stopped = || StoreError::Unavailable("the store's writer has stopped".into());
        let place = Arc::clone(&self.room).acquire_owned().await.map_err(|_| stopped())?;
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Box::new(Typed { body, reply, _place: place })).map_err(|_| stopped())?;
        answer.await.map_err(|_| StoreError::Unavailable("the store's writer stopped before answering".into()))?
    }
}

fn run(conn: Connection, queue: Receiver<Box<dyn Job>>, committed: SyncSender<()>) {
    // A lone caller gains nothing from the wait: the writer lingers only while batches show
    // that requests overlap (the last one held more than one job).
    let mut overlapping = false;
    let mut linger = Linger::default();
    while let Ok(first) = queue.recv() {
        let (gap, max) = linger.waits(overlapping);
        let batch = gather(first, &queue, gap, max);
        overlapping = batch.len() > 1;
        if let Some(took) = commit_batch(&conn, batch) {
            linger.observe(took);
        }
        // Wakes the checkpointer unless a wake-up is already pending.
        let _ = committed.try_send(());
    }
}

/// How long the writer waits for more jobs before it commits: while requests overlap, up to
/// what a commit has lately taken (a moving average of the last eight or so), within
/// `LINGER_GAP` per job and `LINGER_MAX` in all; otherwise not at all.
#[derive(Debug, Default)]
struct Linger {
    commit: Duration,
}

impl Linger {
    /// The `(gap, max)` for `gather`.
    fn waits(&self, overlapping: bool) -> (Duration, Duration) {
        if !overlapping {
            return (Duration::ZERO, Duration::ZERO);
        }
        let max = self.commit.min(LINGER_MAX);
        (LINGER_GAP.min(max), max)
    }

    /// A `COMMIT` took `took`.
    fn observe(&mut self, took: Duration) {
        self.commit = (self.commit * 7 + took) / 8;
    }
}

/// A batch: `first`, the jobs already waiting, and those that keep arriving, each within `gap`
/// of the one before and all within `max` of now; at most `MAX_BATCH`.
fn gather<T>(first: T, queue: &Receiver<T>, gap: Duration, max: Duration) -> Vec<T> {
    let until = Instant::now() + max;
    let mut batch = Vec::with_capacity(16);
    batch.push(first);
    while batch.len() < MAX_BATCH {
        let wait = until.saturating_duration_since(Instant::now()).min(gap);
        match queue.recv_timeout(wait) {
            Ok(job) => batch.push(job),
            // Nothing came in time, or every sender is gone (the next `recv` ends the writer).
            Err(_) => break,
        }
    }
    batch
}

/// Copies committed pages from the WAL into the database file, off the writer's path: a
/// checkpoint writes and syncs the database file, and while the writer did that, no commit
/// could happen. PASSIVE never waits for readers or the writer; what it cannot copy yet is
/// copied at a later round. Ends when the writer ends.
fn checkpoint(conn: Connection, commits: Receiver<()>) {
    while commits.recv().is_ok() {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed (the writer checkpoints by itself if this lasts)");
        }
        // Lets the WAL gather a few batches' pages: one sync of the database file for all.
        std::thread::sleep(CHECKPOINT_PAUSE);
    }
}

fn control(conn: &Connection, statement: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(statement)?.execute([]).map(|_| ())
}

/// Runs `jobs` in one transaction and answers them; returns how long its `COMMIT` took, if one ran.
fn commit_batch(conn: &Connection, jobs: Vec<Box<dyn Job>>) -> Option<Duration> {
    // IMMEDIATE: take the write lock now (waiting up to busy_timeout for another process, e.g.
    // an admin command), not at the first write, where a deadlock could only be reported.
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        let e = failure(&e);
        for job in jobs {
            job.fail(StoreError::Unavailable(format!("cannot start a write transaction: {e}")));
        }
        return None;
    }
    let mut answers: Vec<Answer> = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Err(e) = control(conn, "SAVEPOINT job") {
            job.fail(StoreError::Unavailable(failure(&e)));
            continue;
        }
        let done = job.run(conn);
        let end = if done.keep {
            control(conn, "RELEASE job")
        } else {
            control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"))
        };
        if let Err(e) = end {
            // The savepoint could not be closed: the transaction's state is unknown, so nothing
            // of this batch may be committed. After some failures (a full disk, an I/O error)
            // SQLite has already rolled the whole transaction back, and the savepoint is gone.
            let e = if conn.is_autocommit() {
                "SQLite rolled the batch's transaction back when one of its writes failed (that \
                 request's error says why: a full disk or an I/O error)"
                    .to_string()
            } else {
                failure(&e)
            };
            let _ = control(conn, "ROLLBACK");
            (done.answer)(Some(&e));
            for answer in answers {
                answer(Some(&e));
            }
            return None;
        }
        answers.push(done.answer);
    }
    let started = Instant::now();
    let commit = control(conn, "COMMIT").map_err(|e| failure(&e));
    let took = started.elapsed();
    if commit.is_err() && !conn.is_autocommit() {
        let _ = control(conn, "ROLLBACK");
    }
    let error = commit.err();
    for answer in answers {
        answer(error.as_deref());
    }
    Some(took)
}

/// Redeems a code or device code once: `claim` (a conditional UPDATE) marks it redeemed and the
/// tokens are stored with it, or `state` reads who redeemed it (`redeemed_at`, `redeemed_trace`).
fn redeem_once(
    conn: &Connection,
    [claim, state]: [&str; 2],
    hash: &str,
    now: UnixTime,
    trace: &str,
    issued: &IssuedTokens,
) -> StoreResult<Redemption> {
    if execute(conn, claim, &[&now, &trace, &hash])? == 0 {
        let redeemed = first_row(conn, state, &[&hash], |row| {
            Ok((row.opt_int("redeemed_at")?, row.opt_text("redeemed_trace")?, row.opt_int("session_ended_at")?))
        })?;
        return Ok(match redeemed {
            Some((Some(redeemed_at), redeemed_trace, _)) => Redemption::AlreadyRedeemed { redeemed_at, redeemed_trace },
            Some((None, _, Some(at))) => Redemption::SessionEnded { at },
            _ => Redemption::Missing,
        });
    }
    insert_issued(conn, issued)?;
    Ok(Redemption::Redeemed)
}

/// Inserts the tokens of one response inside the current transaction.
fn insert_issued(conn: &Connection, issued: &IssuedTokens) -> StoreResult<()> {
    let a = &issued.access;
    execute(
        conn,
        sql::INSERT_ACCESS,
        &[
            &a.hash,
            &a.grant_id,
            &a.client_id,
            &a.user_id,
            &a.scope,
            &a.issued_at,
            &a.expires_at,
            &a.revoked_at,
            &a.audience,
            &a.format.as_str(),
            &a.dpop_jkt,
        ],
    )?;
    if let Some(r) = &issued.refresh {
        let resources = crate::to_json(&r.resources)?;
        execute(
            conn,
            sql::INSERT_REFRESH,
            &[
                &r.hash,
                &r.grant_id,
                &r.client_id,
                &r.user_id,
                &r.scope,
                &r.auth_time,
                &r.issued_at,
                &r.expires_at,
                &r.rotated_at,
                &r.rotated_trace,
                &r.revoked_at,
                &r.issued_trace,
                &resources,
                &r.dpop_jkt,
                &r.sid,
            ],
        )?;
    }
    if let Some(r) = &issued.audit {
        insert_audit(conn, r)?;
    }
    Ok(())
}

fn insert_audit(conn: &Connection, r: &AuditRecord) -> StoreResult<()> {
    let facts = r.facts.to_string();
    execute(
        conn,
        sql::INSERT_AUDIT,
        &[&r.trace_id, &r.at, &r.endpoint, &r.client_id, &r.grant_type, &r.reason, &facts, &r.grant_id, &r.encoding],
    )
    .map(|_| ())
}

#[async_trait]
impl Writes for Writer {
    async fn insert_code(&self, c: CodeRecord) -> StoreResult<()> {
        self.write(move |conn| {
            let challenge = c.code_challenge.as_ref().map(|ch| ch.value.as_str());
            let method = c.code_challenge.as_ref().map(|ch| ch.method.as_str());
            let resources = crate::to_json(&c.resources)?;
            execute(
                conn,
                sql::INSERT_CODE,
                &[
                    &c.hash,
                    &c.grant_id,
                    &c.client_id,
                    &c.user_id,
                    &c.redirect_uri,
                    &c.redirect_uri_sent,
                    &c.scope,
                    &c.nonce,
                    &challenge,
                    &method,
                    &c.auth_time,
                    &c.issued_at,
                    &c.expires_at,
                    &c.redeemed_at,
                    &c.redeemed_trace,
                    &c.issued_trace,
                    &resources,
                    &c.dpop_jkt,
                    &c.sid,
                    &c.session_ended_at,
                ],
            )?;
            if let Some(sid) = &c.sid {
                execute(conn, sql::SESSION_SIGNED_IN_TO, &[sid, &c.client_id, &c.issued_at])?;
            }
            Ok(())
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
        // One writer at a time: the claim cannot race another transaction.
        self.write(move |conn| redeem_once(conn, [sql::CLAIM_CODE, sql::CODE_REDEMPTION], &hash, now, &trace, &issued))
            .await
    }

    async fn insert_device_code(&self, d: DeviceCodeRecord) -> StoreResult<()> {
        self.write(move |conn| {
            let resources = crate::to_json(&d.resources)?;
            execute(
                conn,
                sql::INSERT_DEVICE_CODE,
                &[
                    &d.hash,
                    &d.user_code_hash,
                    &d.grant_id,
                    &d.client_id,
                    &d.scope,
                    &resources,
                    &d.issued_at,
                    &d.expires_at,
                    &d.poll_interval,
                    &d.last_polled_at,
                    &d.status.as_str(),
                    &d.user_id,
                    &d.auth_time,
                    &d.decided_at,
                    &d.decided_trace,
                    &d.redeemed_at,
                    &d.redeemed_trace,
                    &d.issued_trace,
                ],
            )
            .map(|_| ())
        })
        .await
    }

    async fn poll_device_code(&self, hash: String, now: UnixTime) -> StoreResult<Option<Poll>> {
        self.write(move |conn| {
            first_row(conn, sql::POLL_DEVICE_CODE, &[&now, &hash], |row| {
                Ok(Poll { previous: row.opt_int("previous_polled_at")?, interval: row.int("poll_interval")? })
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
        self.write(move |conn| {
            let (status, user_id, auth_time) = crate::decision_columns(&decision);
            Ok(execute(conn, sql::DECIDE_DEVICE_CODE, &[&status, &user_id, &auth_time, &now, &trace, &hash])? == 1)
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
        self.write(move |conn| {
            redeem_once(conn, [sql::CLAIM_DEVICE_CODE, sql::DEVICE_CODE_REDEMPTION], &hash, now, &trace, &issued)
        })
        .await
    }

    async fn insert_tokens(&self, issued: IssuedTokens) -> StoreResult<()> {
        self.write(move |conn| insert_issued(conn, &issued)).await
    }

    async fn insert_sibling(&self, rotated_hash: String, issued: IssuedTokens) -> StoreResult<bool> {
        self.write(move |conn| {
            let revoked_at =
                first_row(conn, sql::REFRESH_REVOKED_AT, &[&rotated_hash], |row| row.opt_int("revoked_at"))?;
            if !matches!(revoked_at, Some(None)) {
                return Ok(false);
            }
            insert_issued(conn, &issued)?;
            Ok(true)
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
        self.write(move |conn| {
            if execute(conn, sql::CLAIM_REFRESH, &[&now, &trace, &hash])? == 0 {
                let state = first_row(conn, sql::REFRESH_ROTATION, &[&hash], |row| {
                    Ok((row.opt_int("rotated_at")?, row.opt_text("rotated_trace")?))
                })?;
                return Ok(match state {
                    None => Rotation::Missing,
                    Some((Some(rotated_at), rotated_trace)) => Rotation::AlreadyRotated { rotated_at, rotated_trace },
                    Some((None, _)) => Rotation::Revoked,
                });
            }
            insert_issued(conn, &issued)?;
            Ok(Rotation::Rotated)
        })
        .await
    }

    async fn revoke_grant(&self, grant_id: String, now: UnixTime) -> StoreResult<u64> {
        self.write(move |conn| {
            let mut n = 0;
            for statement in sql::REVOKE_GRANT {
                n += execute(conn, statement, &[&now, &grant_id])?;
            }
            Ok(n)
        })
        .await
    }

    async fn revoke_access_token(&self, hash: String, now: UnixTime) -> StoreResult<bool> {
        self.write(move |conn| execute(conn, sql::REVOKE_ACCESS_TOKEN, &[&now, &hash]).map(|n| n == 1)).await
    }

    async fn use_client_assertion(&self, client_id: String, jti: String, expires_at: UnixTime) -> StoreResult<bool> {
        self.write(move |conn| {
            execute(conn, sql::USE_CLIENT_ASSERTION, &[&client_id, &jti, &expires_at]).map(|n| n == 1)
        })
        .await
    }

    async fn use_dpop_proof(&self, jkt: String, jti: String, expires_at: UnixTime) -> StoreResult<bool> {
        self.write(move |conn| execute(conn, sql::USE_DPOP_PROOF, &[&jkt, &jti, &expires_at]).map(|n| n == 1)).await
    }

    async fn insert_session(&self, s: SessionRecord) -> StoreResult<()> {
        self.write(move |conn| {
            execute(
                conn,
                sql::INSERT_SESSION,
                &[&s.hash, &s.user_id, &s.auth_time, &s.created_at, &s.expires_at, &s.sid],
            )
            .map(|_| ())
        })
        .await
    }

    async fn delete_session(&self, hash: String) -> StoreResult<()> {
        self.write(move |conn| execute(conn, sql::DELETE_SESSION, &[&hash]).map(|_| ())).await
    }

    async fn end_session(&self, hash: String, now: UnixTime) -> StoreResult<Option<EndedSession>> {
        self.write(move |conn| {
            let Some(session) = first_row(conn, sql::END_SESSION, &[&hash], |row| crate::rows::session(row))? else {
                return Ok(None);
            };
            let (mut clients, mut tokens_revoked) = (Vec::new(), 0);
            if let Some(sid) = &session.sid {
                clients = all_rows(conn, sql::END_SESSION_CLIENTS, &[sid], |row| row.text("client_id"))?;
                execute(conn, sql::END_SESSION_CODES, &[&now, sid])?;
                for statement in sql::END_SESSION_REVOKE {
                    tokens_revoked += execute(conn, statement, &[&now, sid])?;
                }
            }
            Ok(Some(EndedSession { session, clients, tokens_revoked }))
        })
        .await
    }

    async fn insert_interaction(&self, i: InteractionRecord) -> StoreResult<()> {
        self.write(move |conn| {
            let request = i.request.to_string();
            execute(
                conn,
                sql::INSERT_INTERACTION,
                &[
                    &i.hash,
                    &request,
                    &i.browser_hash,
                    &i.csrf_hash,
                    &i.login_user_id,
                    &i.login_time,
                    &i.created_at,
                    &i.expires_at,
                    &i.login_sid,
                ],
            )
            .map(|_| ())
        })
        .await
    }

    async fn record_login(&self, hash: String, user_id: String, at: UnixTime, sid: Option<String>) -> StoreResult<()> {
        self.write(move |conn| execute(conn, sql::RECORD_LOGIN, &[&user_id, &at, &hash, &sid]).map(|_| ())).await
    }

    async fn insert_pushed_request(&self, p: PushedRequest) -> StoreResult<()> {
        self.write(move |conn| {
            execute(conn, sql::INSERT_PUSHED_REQUEST, &[&p.hash, &p.client_id, &p.params, &p.expires_at]).map(|_| ())
        })
        .await
    }

    async fn take_pushed_request(&self, hash: String, now: UnixTime) -> StoreResult<candor_core::store::Taking> {
        use candor_core::store::Taking;
        self.write(move |conn| {
            if let Some(p) = first_row(conn, sql::TAKE_PUSHED_REQUEST, &[&now, &hash], |row| crate::rows::pushed(row))?
            {
                return Ok(Taking::Taken(p));
            }
            let used = first_row(conn, sql::PUSHED_REQUEST_USED_AT, &[&hash], |row| row.opt_int("used_at"))?;
            Ok(match used {
                Some(Some(used_at)) => Taking::AlreadyUsed { used_at },
                _ => Taking::Missing,
            })
        })
        .await
    }

    async fn take_interaction(&self, hash: String) -> StoreResult<bool> {
        self.write(move |conn| Ok(execute(conn, sql::TAKE_INTERACTION, &[&hash])? > 0)).await
    }

    async fn revoke_consent(&self, user_id: String, client_id: String, now: UnixTime) -> StoreResult<bool> {
        self.write(move |conn| {
            let n = execute(conn, sql::DELETE_CONSENT, &[&user_id, &client_id])?;
            execute(conn, sql::REVOKE_CONSENTED_TOKENS, &[&now, &user_id, &client_id])?;
            Ok(n > 0)
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
        self.write(move |conn| {
            for scope in &scopes {
                execute(conn, sql::GRANT_CONSENT, &[&user_id, &client_id, scope, &now])?;
            }
            Ok(())
        })
        .await
    }

    async fn record_audit(&self, r: AuditRecord) -> StoreResult<()> {
        self.write(move |conn| insert_audit(conn, &r)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_caller_is_answered_after_the_commit_and_a_failed_job_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        table_at(&path);
        let writer = Writer::start(&path, true).unwrap();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let w = writer.clone();
            tasks.push(tokio::spawn(async move {
                w.write(move |conn| {
                    execute(conn, "INSERT INTO t (a, b) VALUES ($1, $2)", &[&format!("k{i}"), &i])?;
                    // Every fourth job fails after its first write.
                    if i % 4 == 0 { execute(conn, "INSERT INTO t (a) VALUES ($1)", &[&format!("k{i}")]) } else { Ok(1) }
                })
                .await
            }));
        }
        let mut failed = 0;
        for t in tasks {
            if t.await.unwrap().is_err() {
                failed += 1;
            }
        }
        assert_eq!(failed, 10);
        // A separate connection sees exactly the kept jobs: they were committed before the answers.
        let other = Connection::open(&path).unwrap();
        let n: i64 = other.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        let failed_kept: i64 = other.query_row("SELECT COUNT(*) FROM t WHERE b % 4 = 0", [], |r| r.get(0)).unwrap();
        assert_eq!((n, failed_kept), (30, 0));
    }

    #[test]
    fn a_batch_takes_the_jobs_waiting_and_those_that_keep_arriving_up_to_its_limits() {
        let long = Duration::from_secs(5);
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 1..=5 {
            tx.send(i).unwrap();
        }
        // Jobs already waiting join at once; the gap then closes the batch.
        assert_eq!(gather(0, &rx, Duration::from_millis(1), long), vec![0, 1, 2, 3, 4, 5]);
        // Never more than MAX_BATCH; the rest form the next batch.
        for i in 0..MAX_BATCH + 10 {
            tx.send(i).unwrap();
        }
        assert_eq!(gather(rx.recv().unwrap(), &rx, Duration::ZERO, long).len(), MAX_BATCH);
        assert_eq!(gather(rx.recv().unwrap(), &rx, Duration::ZERO, long).len(), 10);
        // A job that arrives within the gap joins; one that arrives after it does not.
        let late = |after: Duration| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                std::thread::sleep(after);
                let _ = tx.send(1);
            });
            rx
        };
        assert_eq!(gather(0, &late(Duration::from_millis(20)), long, long), vec![0, 1]);
        assert_eq!(gather(0, &late(Duration::from_millis(300)), Duration::from_millis(1), long), vec![0]);
        // The whole gathering is bounded too, however short the gaps.
        let (tx, rx) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_millis(600);
            while Instant::now() < end && tx.send(1).is_ok() {
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let started = Instant::now();
        let batch = gather(0, &rx, long, Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
        assert!(batch.len() > 1 && batch.len() < MAX_BATCH, "{}", batch.len());
        drop(rx);
        sender.join().unwrap();
    }

    #[test]
    fn the_writer_waits_for_more_jobs_only_while_they_overlap_and_no_longer_than_a_commit_takes() {
        let us = Duration::from_micros;
        let mut linger = Linger::default();
        // Nothing measured yet: no wait.
        assert_eq!(linger.waits(true), (Duration::ZERO, Duration::ZERO));
        // Cheap commits (a fast disk): waiting longer than they take would only delay everyone.
        for _ in 0..64 {
            linger.observe(us(20));
        }
        let (gap, max) = linger.waits(true);
        assert!(gap == max && max > us(19) && max <= us(20), "{max:?}");
        // A lone caller never waits, however costly a commit.
        assert_eq!(linger.waits(false), (Duration::ZERO, Duration::ZERO));
        // Costly commits: the wait grows with them (an average, not the last one alone)...
        linger.observe(us(180));
        let (gap, max) = linger.waits(true);
        assert!(gap == LINGER_GAP && max > us(39) && max <= us(40), "{max:?}");
        // ...up to its bounds.
        for _ in 0..64 {
            linger.observe(Duration::from_millis(5));
        }
        assert_eq!(linger.waits(true), (LINGER_GAP, LINGER_MAX));
    }

    fn table_at(path: &Path) {
        Connection::open(path)
            .unwrap()
            .execute_batch("CREATE TABLE t (a TEXT PRIMARY KEY, b INTEGER, c TEXT)")
            .unwrap();
    }
}
