//! [`Queue`]: what a work queue must do for outofsync, whatever engine holds it. Redis Streams
//! is the one engine today ([`RedisQueue`](crate::RedisQueue)); the submitter, the workers and
//! the collector are written against this trait only.
//!
//! The promises an engine must keep:
//! - a task is delivered to one worker at a time, and stays *pending* until it is finished;
//!   a pending task whose worker stops renewing its lease can be taken over by another;
//! - [`Queue::finish`] publishes a task's record only if the task was still pending — so of two
//!   workers that fetched the same task, exactly one publishes;
//! - published records stay until the collector trims them, which it does only once they are
//!   on its disk.

use std::future::Future;
use std::time::Duration;

/// The id of an entry in a stream (`1700000000000-0` in Redis).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub String);

impl EntryId {
    /// Before every entry.
    pub fn start() -> EntryId {
        EntryId("0-0".to_owned())
    }
}

/// What a job was submitted with, as the workers read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    /// The fetch options of the job (`--rate 20/s`, `-H …`), as the submitter's command line gave
    /// them: each worker builds its engine from them, as `fetch` would.
    pub options: Vec<String>,
    /// How long a worker holds a task without renewing its lease before others may take it.
    pub lease: Duration,
    /// Deliveries of one task without a record before it ends as a failure (poison).
    pub max_deliveries: u64,
}

/// The state of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    /// Its name.
    pub name: String,
    /// What it was submitted with.
    pub spec: JobSpec,
    /// When it was created, in ms since 1970 by the server's clock: with the name, its identity.
    pub created_ms: u64,
    /// `submitting`, `running` (every input submitted) or `done` (every record collected).
    pub status: String,
    /// Inputs submitted so far.
    pub submitted: u64,
    /// Inputs in all, once every one is submitted.
    pub total: Option<u64>,
    /// Inputs whose record is published.
    pub finished: u64,
    /// Tasks taken over from workers that stopped.
    pub reclaims: u64,
    /// Inputs ended as poison.
    pub poisoned: u64,
}

/// One task handed to a worker.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Its entry.
    pub id: EntryId,
    /// The input's index.
    pub i: u64,
    /// The encoded input ([`crate::task`]).
    pub task: Vec<u8>,
    /// How often it was delivered before this delivery (0 for a first one).
    pub delivered_before: u64,
}

/// A finished input for [`Queue::finish`].
#[derive(Clone, Debug)]
pub struct Finished {
    /// Its task's entry.
    pub id: EntryId,
    /// The input's index.
    pub i: u64,
    /// Whether the record is a success.
    pub ok: bool,
    /// The error kind of a failed record (`""` for a success).
    pub kind: &'static str,
    /// The record ended a poison task.
    pub poison: bool,
    /// The record's JSON line, `\n` included.
    pub line: Vec<u8>,
}

/// A published record, for the collector.
#[derive(Clone, Debug)]
pub struct Published {
    /// Its entry in the results.
    pub id: EntryId,
    /// The input's index.
    pub i: u64,
    /// Whether it is a success.
    pub ok: bool,
    /// The error kind of a failure.
    pub kind: String,
    /// The JSON line, `\n` included.
    pub line: Vec<u8>,
}

/// How far the tasks of a job are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remaining {
    /// Every input is submitted.
    pub sealed: bool,
    /// Tasks not yet finished (waiting or pending).
    pub tasks: u64,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue's server could not be reached or answered with an error; trying again later
    /// may work (the connection is re-made on its own).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The job is not there.
    #[error("there is no job {0:?} (submit it first, or see `outofsync status`)")]
    NoJob(String),
    /// The queue holds something this version does not understand.
    #[error("{0}")]
    Invalid(String),
}

impl QueueError {
    /// Whether waiting and trying again may help (a connection lost, the server restarting).
    pub fn is_transient(&self) -> bool {
        match self {
            QueueError::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                    || matches!(e.code(), Some("LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN"))
            }
            QueueError::NoJob(_) | QueueError::Invalid(_) => false,
        }
    }
}

/// The result of a queue operation.
pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// A work queue holding one job: its tasks, their leases, its published records.
pub trait Queue: Send + Sync + 'static {
    /// Creates the job; `Ok(None)` if a job of that name exists (then nothing is changed).
    fn create(&self, spec: &JobSpec) -> impl Future<Output = Result<Option<JobInfo>>> + Send;
    /// The job's state.
    fn info(&self) -> impl Future<Output = Result<JobInfo>> + Send;
    /// Appends tasks `first..first + tasks.len()` (each `(i, encoded input)`), unless the job
    /// does not have exactly `first` tasks yet; returns how many it has now.
    fn push(&self, first: u64, tasks: &[(u64, Vec<u8>)]) -> impl Future<Output = Result<u64>> + Send;
    /// Every input is submitted: `total` in all.
    fn seal(&self, total: u64) -> impl Future<Output = Result<()>> + Send;
    /// New tasks for `consumer`, at most `max`, waiting up to `block` for one.
    fn take(
        &self,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery>>> + Send;
    /// Tasks that other workers held past `lease` without renewing it, at most `max`, now
    /// `consumer`'s.
    fn reclaim(
        &self,
        consumer: &str,
        lease: Duration,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>>> + Send;
    /// The heartbeat of `consumer`, renewing the leases of the tasks it holds.
    fn renew(&self, consumer: &str, held: &[EntryId]) -> impl Future<Output = Result<()>> + Send;
    /// Publishes finished inputs; for each, whether this call published it (false: another
    /// worker had finished it first).
    fn finish(&self, done: &[Finished]) -> impl Future<Output = Result<Vec<bool>>> + Send;
    /// How far the tasks are.
    fn remaining(&self) -> impl Future<Output = Result<Remaining>> + Send;
    /// Published records after `after`, at most `max`, waiting up to `block` for one.
    fn results(
        &self,
        after: &EntryId,
        max: usize,
        block: Duration,
    ) -> impl Future<Output = Result<Vec<Published>>> + Send;
    /// Forgets published records up to `upto` (they are on the collector's disk).
    fn trim(&self, upto: &EntryId) -> impl Future<Output = Result<()>> + Send;
    /// Every record is collected: marks the job done, and lets its keys expire after `keep`.
    fn complete(&self, collected: u64, keep: Duration) -> impl Future<Output = Result<()>> + Send;
}
