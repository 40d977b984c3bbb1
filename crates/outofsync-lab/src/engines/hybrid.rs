//! `hybrid`: one event loop (tokio current-thread) does all the I/O; the heavy work of each
//! response goes to a pool of one thread per core (tokio's blocking pool, capped), so the loop
//! never stops serving sockets — asyncio with `run_in_executor`, done with real parallel threads.

use std::sync::Arc;

use super::event_loop::{Offload, drive};
use super::{EngineError, EngineJob, Tally};

/// Runs `job`'s I/O on the caller's thread and its heavy work on `job.cpu_threads` more.
pub(super) fn run(job: Arc<EngineJob>, tally: Arc<Tally>) -> Result<(), EngineError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(job.cpu_threads)
        .thread_stack_size(job.stack_size)
        .build()
        .map_err(EngineError::Runtime)?;
    drive(&runtime, job, tally, Offload::Blocking)
}
