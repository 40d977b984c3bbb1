//! The loop the three async engines share: [`Fetcher::fetch_all`] over the job's requests, and
//! each record's work done where the engine says.
//!
//! The engines differ only in the runtime they pass and in [`Offload`]: where the heavy work of a
//! response runs. Light work (hashing a few bytes) always runs in the loop.

use std::sync::Arc;

use futures_util::StreamExt;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};

use super::{EngineError, EngineJob, Tally};
use outofsync::engine::Fetcher;

/// Where the heavy work of a response runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Offload {
    /// In the loop itself, which waits for it: no other request makes progress meanwhile on a
    /// single-threaded runtime (an `async def` doing CPU work between two `await`s).
    Inline,
    /// In a task of its own, on whichever runtime worker is free (it still occupies a worker).
    Task,
    /// On the runtime's blocking pool (`spawn_blocking`), so the loop keeps serving I/O.
    Blocking,
}

/// Runs `job` on `runtime` and returns when every record is tallied.
pub(super) fn drive(
    runtime: &Runtime,
    job: Arc<EngineJob>,
    tally: Arc<Tally>,
    offload: Offload,
) -> Result<(), EngineError> {
    let fetcher = Fetcher::builder().config(job.config.clone()).build()?;
    // Spawned rather than run in `block_on`, so that on a multi-thread runtime the loop runs on a
    // worker like every task, and the main thread only waits.
    let run = runtime.spawn(async move {
        // The fetcher is fed only as many requests as may be in flight: a turn is taken before a
        // request is handed over and given back when its record comes out. Its clock then starts
        // when the request can go, as in the blocking engines, instead of while it queues for a
        // turn inside the fetcher (whose admission takes in a few times its concurrency).
        let turns = Arc::new(Semaphore::new(job.concurrency));
        let inputs = futures_util::stream::iter(0..job.requests).then({
            let (job, tally, turns) = (job.clone(), tally.clone(), turns.clone());
            move |i| {
                let (job, tally, turns) = (job.clone(), tally.clone(), turns.clone());
                async move {
                    turns.acquire().await.expect("the semaphore is never closed").forget();
                    tally.begin();
                    job.workload.input(i)
                }
            }
        });
        let mut records = fetcher.fetch_all(inputs);
        // Work handed off holds a permit until done: at most `concurrency` responses wait for
        // their work, so a loop faster than its workers cannot pile up records.
        let permits = Arc::new(Semaphore::new(job.concurrency));
        let mut work = JoinSet::new();
        while let Some(record) = records.next().await {
            tally.end();
            turns.add_permits(1);
            if offload == Offload::Inline || !job.workload.is_heavy(record.i) {
                job.finish(record, &tally);
            } else {
                let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
                let (job, tally) = (job.clone(), tally.clone());
                let finish = move || {
                    job.finish(record, &tally);
                    drop(permit);
                };
                if offload == Offload::Task {
                    work.spawn(async move { finish() });
                } else {
                    work.spawn_blocking(finish);
                }
            }
            // Reap what is done, so the set stays as small as the work in progress.
            while let Some(done) = work.try_join_next() {
                reap(done);
            }
        }
        while let Some(done) = work.join_next().await {
            reap(done);
        }
    });
    reap(runtime.block_on(run));
    Ok(())
}

/// A panic in a task is a bug of the lab: carry it to the caller instead of losing a record.
fn reap(done: Result<(), JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
}
