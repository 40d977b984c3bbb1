//! The submitter: streams a job's inputs into its queue in batches, numbered as `fetch` numbers
//! them, in memory bounded by one batch however long the input.
//!
//! Each batch is appended only if the queue holds exactly the tasks before it, so a batch sent
//! again after a lost reply is not added twice, and an interrupted submission can go on
//! (`submit --resume`) from the count the queue holds.

use futures_util::{Stream, StreamExt};
use outofsync::request::Input;

use crate::patience::patiently;
use crate::queue::{JobInfo, JobSpec, Queue, QueueError};
use crate::task;

/// Tasks sent in one round trip, at most…
const BATCH: usize = 1000;
/// …and bytes of tasks.
const BATCH_BYTES: usize = 1 << 20;

/// What a submission did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// Inputs in the job.
    pub total: u64,
    /// Inputs this run added (the others were there already).
    pub added: u64,
}

/// Why a submission stopped.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// A job of that name exists and this is not a resume of it.
    #[error(
        "there is already a job {name:?} ({status}, {submitted} inputs submitted): pick another name, \
         or `outofsync status --job {name}`; to finish submitting it after an interruption, --resume"
    )]
    Exists {
        /// The job.
        name: String,
        /// Its status.
        status: String,
        /// Its inputs so far.
        submitted: u64,
    },
    /// A resume with other fetch options than the job's.
    #[error("the job {name:?} was submitted with other options ({then:?}); give the same to resume it")]
    Differs {
        /// The job.
        name: String,
        /// Its options.
        then: Vec<String>,
    },
    /// Another submitter is adding to the same job.
    #[error("another submitter is adding to the job {0:?} at the same time")]
    Raced(String),
    /// The queue failed.
    #[error("{0}")]
    Queue(#[from] QueueError),
}

/// Creates the job, or with `resume` finds the one whose submission was interrupted (its
/// `total` is set if it was not). Then [`send`] streams the inputs into it.
///
/// # Errors
/// As [`SubmitError`].
pub async fn open<Q: Queue>(queue: &Q, spec: &JobSpec, resume: bool) -> Result<JobInfo, SubmitError> {
    if let Some(job) = patiently("creating the job", || queue.create(spec)).await? {
        return Ok(job);
    }
    let job = patiently("reading the job", || queue.info()).await?;
    if !resume {
        return Err(SubmitError::Exists { name: job.name, status: job.status, submitted: job.submitted });
    }
    if job.spec.options != spec.options {
        return Err(SubmitError::Differs { name: job.name, then: job.spec.options });
    }
    Ok(job)
}

/// Streams `inputs` — `(i, input)`, numbered by the caller (all of an input from 0, or one
/// shard of it under the whole input's indexes) — into `job`, skipping as many as the job holds
/// already; then seals it: its total is known.
///
/// # Errors
/// As [`SubmitError`].
pub async fn send<Q, S>(queue: &Q, job: &JobInfo, inputs: S) -> Result<Submitted, SubmitError>
where
    Q: Queue,
    S: Stream<Item = (u64, Input)> + Send,
{
    if let Some(total) = job.total {
        return Ok(Submitted { total, added: 0 });
    }
    let skip = job.submitted;
    let mut inputs = std::pin::pin!(inputs.skip(skip as usize));
    let (mut next, mut batch, mut bytes) = (skip, Vec::with_capacity(BATCH), 0);
    loop {
        let item = inputs.next().await;
        if let Some((i, input)) = &item {
            let encoded = task::encode(input);
            bytes += encoded.len();
            batch.push((*i, encoded));
        }
        let full = batch.len() >= BATCH || bytes >= BATCH_BYTES;
        if !batch.is_empty() && (full || item.is_none()) {
            let now = patiently("adding tasks", || queue.push(next, &batch)).await?;
            if now != next + batch.len() as u64 {
                return Err(SubmitError::Raced(job.name.clone()));
            }
            (next, bytes) = (now, 0);
            batch.clear();
        }
        if item.is_none() {
            break;
        }
    }
    patiently("sealing the job", || queue.seal(next)).await?;
    Ok(Submitted { total: next, added: next - skip })
}
