//! The collector: appends a job's published records to one output file, with the journal rules
//! of `fetch` — each record once (deduplicated on `i`), synced to disk, and only then forgotten
//! by the queue — until every input has its record.
//!
//! Order of steps, each for a reason:
//! 1. Open the output as `fetch --resume` does (the lock, the manifest, a torn last line cut,
//!    the set of inputs it records): a restarted collector goes on where it stopped, and a second
//!    one on the same file is refused.
//! 2. Read records after a cursor (the start of the stream, after a restart), append the ones
//!    the file lacks in one write, sync it.
//! 3. Only then trim the records read from the queue. A crash between 2 and 3 reads them again,
//!    and step 2 drops them as already recorded: one record per input.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use outofsync::engine::{Config, Shutdown};
use outofsync::output::{Done, Journal, Manifest, OpenError, ResumeOptions, Start};
use outofsync::request::{LineDefaults, Source};

use crate::patience::patiently;
use crate::queue::{EntryId, JobInfo, Queue, QueueError};

/// Records read from the queue at once, at most.
const READ_MAX: usize = 1000;
/// How long a read waits for records before the collector looks at the job again.
const READ_BLOCK: Duration = Duration::from_secs(1);

/// How the collector runs.
#[derive(Clone, Debug)]
pub struct CollectOptions {
    /// The output file (appended to; created if missing).
    pub output: PathBuf,
    /// Sync the file before the queue forgets what was written (off: `--fsync never`).
    pub fsync: bool,
    /// How long the job's keys are kept once every record is collected.
    pub keep: Duration,
    /// Stops the collector between two batches (what it wrote is on disk).
    pub shutdown: Shutdown,
}

/// What the collector did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Records the output held before this run.
    pub kept: u64,
    /// Records this run appended.
    pub written: u64,
    /// Of which successful.
    pub ok: u64,
    /// Failures appended, by error kind.
    pub failures: BTreeMap<String, u64>,
    /// Records read again that the output already held (dropped).
    pub duplicates: u64,
    /// Every input of the job has its record in the output.
    pub complete: bool,
    /// The job's inputs in all, if known.
    pub total: Option<u64>,
}

/// Why collecting stopped.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The output cannot be used (another run holds it, it was written by another job…).
    #[error("{0}")]
    Open(#[from] OpenError),
    /// The output could not be written or synced.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The output.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The queue failed.
    #[error("{0}")]
    Queue(#[from] QueueError),
}

/// The manifest of a collector's output: the job (its name and creation time), so that the
/// output of another job (or of another job of the same name) is not appended to.
pub fn manifest(job: &JobInfo) -> std::io::Result<Manifest> {
    let source = Source::Url(format!("queue job {} created at {} ms", job.name, job.created_ms));
    Manifest::new(&[source], &Config::default(), &LineDefaults::default())
}

/// Collects `job`'s records from `queue` into `options.output` until every input has one, or
/// the shutdown stops it.
///
/// # Errors
/// The output cannot be opened, written or synced (what was written stays), or the queue failed
/// for a reason waiting does not cure.
pub async fn collect<Q: Queue>(
    queue: &Q,
    job: &JobInfo,
    options: CollectOptions,
) -> Result<Collected, CollectError> {
    let manifest =
        manifest(job).map_err(|source| CollectError::Write { path: options.output.clone(), source })?;
    let path = options.output.clone();
    let journal = tokio::task::spawn_blocking(move || {
        Journal::open(&path, Start::Resume(ResumeOptions::default()), &manifest)
    })
    .await
    .expect("opening the output does not panic")?;
    let (mut file, mut done): (std::fs::File, Done) = (journal.file, journal.done);
    let mut collected = Collected { kept: done.len(), total: job.total, ..Collected::default() };
    let mut cursor = EntryId::start();
    loop {
        if collected.total.is_some_and(|total| done.len() >= total) {
            collected.complete = true;
            break;
        }
        let read = tokio::select! {
            biased;
            () = options.shutdown.input_stopped() => break,
            read = patiently("reading records", || queue.results(&cursor, READ_MAX, READ_BLOCK)) => read?,
        };
        let Some(last) = read.last() else {
            // Nothing new: has the job been sealed since (its total is known only then)?
            collected.total = patiently("reading the job", || queue.info()).await?.total;
            continue;
        };
        cursor = last.id.clone();
        let mut bytes = Vec::new();
        for record in &read {
            if !done.insert(record.i) {
                collected.duplicates += 1;
                continue;
            }
            bytes.extend_from_slice(&record.line);
            collected.written += 1;
            if record.ok {
                collected.ok += 1;
            } else {
                *collected.failures.entry(record.kind.clone()).or_default() += 1;
            }
        }
        if !bytes.is_empty() {
            let fsync = options.fsync;
            let written = tokio::task::spawn_blocking(move || {
                file.write_all(&bytes)?;
                if fsync {
                    file.sync_data()?;
                }
                Ok::<_, std::io::Error>(file)
            })
            .await
            .expect("writing does not panic");
            file = written.map_err(|source| CollectError::Write { path: options.output.clone(), source })?;
        }
        patiently("trimming collected records", || queue.trim(&cursor)).await?;
    }
    if collected.complete {
        patiently("marking the job done", || queue.complete(done.len(), options.keep)).await?;
    }
    Ok(collected)
}
