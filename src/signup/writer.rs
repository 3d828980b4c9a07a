//! Group commit for signups. One writer task per process takes every
//! signup waiting (up to [`GROUP_LIMIT`]) and writes them in one
//! transaction: one BEGIN and one COMMIT (one WAL flush on PostgreSQL) for
//! the group, and on SQLite, where the writer shares one connection with
//! the delivery worker, no signup sleeping in the busy handler behind
//! another (BENCHMARKS.md, "Signups"). Optimistic: if any signup of a
//! group fails, or the transaction is lost as a whole (busy, deadlock, a
//! connection cut), the group is rolled back and its signups are written
//! again one at a time, so each caller gets its own outcome. A savepoint
//! per signup would keep the others' work instead, at one more statement
//! for every signup, which measured slower (BENCHMARKS.md, issue 23).
//!
//! Callers wait for their answer; the group does not wait for them. A
//! caller that goes away (a client hanging up, a request timing out) never
//! cancels the transaction others are in.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use sqlx::{Any, Connection, pool::PoolConnection};
use tokio::sync::{mpsc, oneshot};

use super::{
    SignupOutcome, SignupRequest,
    record::{Recorded, Rules},
};
use crate::store::{self, Store};

/// The most signups in one transaction: enough to share a commit among
/// many, few enough that a group written again one by one stays short.
const GROUP_LIMIT: usize = 64;

/// Signups handed over and not yet taken; past that, callers wait to hand
/// theirs over.
const QUEUE: usize = 1024;

/// A signup handed to the writer, and where its answer goes.
struct Job {
    request: SignupRequest,
    now: i64,
    /// The request's span, so that the signup's log line stays in it.
    span: tracing::Span,
    reply: oneshot::Sender<anyhow::Result<SignupOutcome>>,
}

/// What signups are written through. It starts the writer task on first
/// use, and again if the task has died, so signups never wait on a writer
/// that is gone.
#[derive(Clone)]
pub(super) struct Writer {
    shared: Arc<Shared>,
}

struct Shared {
    store: Store,
    rules: Rules,
    /// The running task's queue. The task holds no sender itself, so it
    /// ends once every `Writer` is dropped.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Writer {
    pub(super) fn new(store: Store, rules: Rules) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                rules,
                jobs: Mutex::new(None),
            }),
        }
    }

    /// Hands a signup to the writer and waits until it is committed, or
    /// has failed.
    pub(super) async fn write(
        &self,
        request: SignupRequest,
        now: i64,
    ) -> anyhow::Result<SignupOutcome> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            request,
            now,
            span: tracing::Span::current(),
            reply,
        };
        if let Err(mpsc::error::SendError(job)) = self.jobs().send(job).await {
            // The task died between the look and the send: a new one.
            self.jobs()
                .send(job)
                .await
                .map_err(|_| anyhow::anyhow!("the signup writer cannot be started"))?;
        }
        answer
            .await
            .context("the signup writer stopped before answering")?
    }

    /// The running writer task's queue, the task started first if none runs.
    fn jobs(&self) -> mpsc::Sender<Job> {
        let mut jobs = self
            .shared
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = jobs.as_ref().filter(|sender| !sender.is_closed()) {
            return sender.clone();
        }
        if jobs.is_some() {
            tracing::error!("the signup writer had stopped; starting another");
        }
        let (sender, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let store = &self.shared.store;
        for _ in 0..writers(store) {
            let (store, rules) = (store.clone(), self.shared.rules.clone());
            tokio::spawn(run(store, rules, receiver.clone()));
        }
        *jobs = Some(sender.clone());
        sender
    }
}

/// How many groups are written at once. SQLite has one writer at a time,
/// and the store's one connection. On PostgreSQL, a group mostly waits
/// for its statements' round trips: several groups on the pool overlap
/// them (one writer measured slower than a transaction per request).
fn writers(store: &Store) -> usize {
    match store.backend() {
        store::Backend::Sqlite => 1,
        store::Backend::Postgres => 4,
    }
}

/// A writer task: one group at a time, until every `Writer` is gone. The
/// writers of one process take their groups from one queue in turn.
async fn run(store: Store, rules: Rules, jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>) {
    let mut group = Vec::with_capacity(GROUP_LIMIT);
    while jobs.lock().await.recv_many(&mut group, GROUP_LIMIT).await > 0 {
        // A caller gone before its signup began gets nothing written, as a
        // request cancelled before its transaction committed always did.
        group.retain(|job: &Job| !job.reply.is_closed());
        // In address order (stable, so two signups of one address keep
        // theirs): groups on other instances lock readers' rows in the same
        // order, and cannot deadlock over them.
        group.sort_by(|a: &Job, b: &Job| {
            a.request.email.canonical().cmp(b.request.email.canonical())
        });
        let taken = std::mem::replace(&mut group, Vec::with_capacity(GROUP_LIMIT));
        write_group(&store, &rules, taken).await;
    }
}

/// Why a group's transaction did not commit.
enum Lost {
    /// It could not start: nothing was tried, and one signup alone would
    /// fare no better.
    Begin(anyhow::Error),
    /// It failed once started: in a signup, or at COMMIT.
    Midway(anyhow::Error),
}

/// Writes a group and answers each caller: together if the transaction
/// commits, else one signup at a time.
async fn write_group(store: &Store, rules: &Rules, group: Vec<Job>) {
    if group.is_empty() {
        return;
    }
    match together(store, rules, &group).await {
        Ok(results) => {
            tracing::debug!(signups = group.len(), "signup group committed");
            answer_all(group, results);
        }
        Err(Lost::Begin(error)) => fail_all(group, error),
        Err(Lost::Midway(error)) if group.len() == 1 => fail_all(group, error),
        Err(Lost::Midway(error)) => {
            tracing::warn!(
                error = crate::telemetry::error_text(&error),
                signups = group.len(),
                "a signup group's transaction failed; writing its signups one at a time"
            );
            one_by_one(store, rules, group).await;
        }
    }
}

/// Each signup of a failed group in a transaction of its own, so that
/// each caller gets its own outcome.
async fn one_by_one(store: &Store, rules: &Rules, group: Vec<Job>) {
    let mut jobs = group.into_iter();
    while let Some(job) = jobs.next() {
        if job.reply.is_closed() {
            continue;
        }
        match together(store, rules, std::slice::from_ref(&job)).await {
            Ok(results) => answer_all(vec![job], results),
            Err(Lost::Midway(error)) => answer(job, Err(error)),
            Err(Lost::Begin(error)) => {
                // The database is out of reach: the rest would each wait
                // as long, to fail the same way.
                fail_all(std::iter::once(job).chain(jobs).collect(), error);
                return;
            }
        }
    }
}

/// The group in one transaction on one connection of the writer's store:
/// each signup's own result, once all are committed.
async fn together(store: &Store, rules: &Rules, group: &[Job]) -> Result<Vec<Recorded>, Lost> {
    let mut conn = store
        .pool()
        .acquire()
        .await
        .context("while taking a connection for signups")
        .map_err(Lost::Begin)?;
    let written = in_transaction(store, &mut conn, rules, group).await;
    if conn.is_in_transaction() {
        // Its rollback failed (SQLite may have ended the transaction on
        // its own): sqlx would refuse every later BEGIN on it, so the pool
        // gets a fresh connection instead.
        conn.close_on_drop();
    }
    written
}

async fn in_transaction(
    store: &Store,
    conn: &mut PoolConnection<Any>,
    rules: &Rules,
    group: &[Job],
) -> Result<Vec<Recorded>, Lost> {
    let mut tx = store.begin_on(conn).await.map_err(Lost::Begin)?;
    let mut results = Vec::with_capacity(group.len());
    for job in group {
        match rules.record(&mut tx, &job.request, job.now).await {
            Ok(recorded) => results.push(recorded),
            Err(error) => {
                // Now, rather than on the connection's next use; a failure
                // here leaves it in a transaction, which `together` sees.
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "cannot roll back a signup group");
                }
                return Err(Lost::Midway(error));
            }
        }
    }
    tx.commit()
        .await
        .context("while committing a group of signups")
        .map_err(Lost::Midway)?;
    Ok(results)
}

/// Answers each caller of a committed group with its own result.
fn answer_all(group: Vec<Job>, results: Vec<Recorded>) {
    for (job, recorded) in group.into_iter().zip(results) {
        answer(job, Ok(recorded));
    }
}

/// Answers every caller of a group whose transaction failed: the first
/// with the error, the others with its text and what it means.
fn fail_all(group: Vec<Job>, error: anyhow::Error) {
    let shared = store::SharedFailure::of(&error);
    let mut error = Some(error);
    for job in group {
        let error = error.take().unwrap_or_else(|| shared.clone().into());
        answer(job, Err(error));
    }
}

/// Gives a caller its answer. A committed signup is counted and logged
/// first, in its request's span, whether or not the caller still waits.
fn answer(job: Job, result: anyhow::Result<Recorded>) {
    let Job { span, reply, .. } = job;
    let outcome = result.map(|recorded| {
        span.in_scope(|| recorded.report());
        recorded.outcome
    });
    // A caller that has gone away does not take back its signup.
    let _ = reply.send(outcome);
}
