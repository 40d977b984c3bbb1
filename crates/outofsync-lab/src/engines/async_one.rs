//! `async-1`: tokio's current-thread runtime. One thread runs the event loop, every request and
//! every response's work — asyncio's model, and the note's "single-threaded event loop".

use std::sync::Arc;

use super::event_loop::{Offload, drive};
use super::{EngineError, EngineJob, Tally};

/// Runs `job` on one thread: the caller's.
pub(super) fn run(job: Arc<EngineJob>, tally: Arc<Tally>) -> Result<(), EngineError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_stack_size(job.stack_size)
        .build()
        .map_err(EngineError::Runtime)?;
    drive(&runtime, job, tally, Offload::Inline)
}
