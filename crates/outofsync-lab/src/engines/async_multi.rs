//! `async-n`: tokio's multi-thread runtime with one worker per core. Requests are tasks that any
//! worker may run (work-stealing); each response's work is a task too, so it occupies a worker
//! while it runs but both cores compute.

use std::sync::Arc;

use super::event_loop::{Offload, drive};
use super::{EngineError, EngineJob, Tally};

/// Runs `job` on `job.cpu_threads` workers; the caller's thread only waits.
pub(super) fn run(job: Arc<EngineJob>, tally: Arc<Tally>) -> Result<(), EngineError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(job.cpu_threads)
        .enable_all()
        .thread_stack_size(job.stack_size)
        .build()
        .map_err(EngineError::Runtime)?;
    drive(&runtime, job, tally, Offload::Task)
}
