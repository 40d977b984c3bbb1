//! `pool`: a fixed pool of OS threads, each sending one request at a time with a blocking client
//! and doing its work, then taking the next. The pool has `pool_size` threads (never more than the
//! concurrency), however many requests are asked to be in flight: its size *is* its concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use super::{BlockingClient, EngineError, EngineJob, Tally};
use crate::metrics::Status;

/// Runs `job` on `min(pool_size, concurrency)` threads.
pub(super) fn run(job: Arc<EngineJob>, tally: Arc<Tally>) -> Result<(), EngineError> {
    let size = job.pool_size.min(job.concurrency).max(1);
    let client = BlockingClient::new(&job.config);
    // The queue is a counter: each thread takes the next index until none is left, which is also
    // what ends every thread.
    let next = AtomicU64::new(0);
    thread::scope(|scope| {
        for number in 0..size as u64 {
            let (client, job, tally, next) = (&client, &job, &tally, &next);
            thread::Builder::new()
                .stack_size(job.stack_size)
                .spawn_scoped(scope, move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= job.requests {
                            break;
                        }
                        tally.begin();
                        let record = client.fetch(i, job.workload.input(i));
                        tally.end();
                        job.finish(record, tally);
                    }
                })
                .map_err(|source| EngineError::Thread { number, source })?;
        }
        // Every thread of the pool is alive now (none ends before the queue is empty): counted
        // here for certain, where the sampler could miss them on a starved machine.
        if let Ok(status) = Status::read() {
            tally.saw_threads(status.threads.saturating_sub(1));
        }
        Ok(())
    })
}
