//! SQLite's group commit: one writer task runs the write transactions of many concurrent
//! requests in one SQLite transaction, each inside its own savepoint, and acknowledges them only
//! after the one `COMMIT` (and its fsync under `synchronous=FULL`) has returned.
//!
//! SQLite allows one writer at a time, and a durable commit costs an fsync: without batching,
//! every token costs a full fsync and concurrent requests queue behind each other's. With it, the
//! requests that arrive while a batch is being written go into the next batch, so the fsync is
//! shared and nothing waits for a timer. Every caller still gets its answer only once its writes
//! are on disk; a job that fails is rolled back to its savepoint without touching the others, and
//! a failed `COMMIT` fails every job of the batch (nothing of it is stored).

use crate::BoxFuture;
use candor_core::store::{StoreError, StoreResult};
use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// At most this many jobs share one transaction (bounds a batch's latency and its WAL growth).
const MAX_BATCH: usize = 256;
/// Jobs waiting for the writer; when full, callers wait (back-pressure, not unbounded memory).
const QUEUE: usize = 4096;

/// A write transaction's body: runs on the writer's connection, inside a savepoint.
pub(crate) trait Job: Send {
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Done>;
    /// The job could not run (no transaction could be started): tell its caller why.
    fn fail(self: Box<Self>, error: StoreError);
}

/// Answers a job's caller once the batch's commit is known (`Some(error)`: it failed).
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

/// A job that ran: whether its writes are kept, and how to answer its caller once the batch's
/// commit is known.
pub(crate) struct Done {
    keep: bool,
    answer: Answer,
}

struct Typed<T, F> {
    body: F,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
{
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Done> {
        let Typed { body, reply } = *self;
        Box::pin(async move {
            let result = body(conn).await;
            let keep = result.is_ok();
            Done {
                keep,
                answer: Box::new(move |commit_error: Option<&str>| {
                    let _ = reply.send(match (result, commit_error) {
                        (Err(e), _) => Err(e),
                        (Ok(v), None) => Ok(v),
                        (Ok(_), Some(e)) => Err(StoreError::Unavailable(format!("the commit failed: {e}"))),
                    });
                }),
            }
        })
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// The handle the store keeps; cloning it shares the one writer.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer task on the current runtime; it ends when the last handle is dropped.
    pub(crate) fn start(pool: SqlitePool) -> Writer {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, queue));
        Writer { jobs }
    }

    /// Runs `body` as (part of) a durable write transaction; returns once it is committed.
    pub(crate) async fn write<T, F>(&self, body: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(Typed { body, reply }))
            .await
            .map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("the store's writer stopped before answering".into()))?
    }
}

async fn run(pool: SqlitePool, mut queue: mpsc::Receiver<Box<dyn Job>>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        match pool.acquire().await {
            Ok(mut conn) => commit_batch(&mut conn, jobs).await,
            Err(e) => {
                let e = e.to_string();
                for job in jobs {
                    job.fail(StoreError::Unavailable(e.clone()));
                }
            }
        }
    }
}

async fn exec(conn: &mut SqliteConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(&mut *conn).await.map(|_| ())
}

async fn commit_batch(conn: &mut PoolConnection<Sqlite>, jobs: Vec<Box<dyn Job>>) {
    // IMMEDIATE: take the write lock now (waiting up to busy_timeout for another process, e.g.
    // an admin command), not at the first write, where a deadlock could only be reported.
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE").await {
        let e = e.to_string();
        for job in jobs {
            job.fail(StoreError::Unavailable(format!("cannot start a write transaction: {e}")));
        }
        return;
    }
    let single = jobs.len() == 1;
    let mut answers: Vec<Answer> = Vec::with_capacity(jobs.len());
    for job in jobs {
        // One job alone needs no savepoint: its failure rolls the whole transaction back.
        if !single && let Err(e) = exec(conn, "SAVEPOINT job").await {
            job.fail(StoreError::Unavailable(e.to_string()));
            continue;
        }
        let done = job.run(conn).await;
        if !single {
            let end = if done.keep { exec(conn, "RELEASE job").await } else { rollback_to(conn).await };
            if let Err(e) = end {
                // The savepoint could not be closed: the transaction's state is unknown, so
                // nothing of this batch may be committed.
                let e = e.to_string();
                let _ = exec(conn, "ROLLBACK").await;
                (done.answer)(Some(&e));
                for answer in answers {
                    answer(Some(&e));
                }
                return;
            }
        }
        if single && !done.keep {
            // Its own error answers it; nothing of it may stay.
            let _ = exec(conn, "ROLLBACK").await;
            (done.answer)(None);
            return;
        }
        answers.push(done.answer);
    }
    let commit = exec(conn, "COMMIT").await.map_err(|e| e.to_string());
    if commit.is_err() {
        let _ = exec(conn, "ROLLBACK").await;
    }
    let error = commit.err();
    for answer in answers {
        answer(error.as_deref());
    }
}

async fn rollback_to(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    exec(conn, "ROLLBACK TO job").await?;
    exec(conn, "RELEASE job").await
}
