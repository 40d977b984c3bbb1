//! `threads`: one OS thread per request in flight. Each request gets a thread of its own that
//! sends it with a blocking client, waits, does the work and ends; at most `concurrency` such
//! threads live at once — the classic thread-per-request server, turned into a client.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use super::{BlockingClient, EngineError, EngineJob, Tally};
use crate::metrics::Status;

/// Runs `job` with a thread per request, `job.concurrency` at a time.
pub(super) fn run(job: Arc<EngineJob>, tally: Arc<Tally>) -> Result<(), EngineError> {
    let client = BlockingClient::new(&job.config);
    // A counting semaphore: `concurrency` tokens; a thread is started only with a token in hand,
    // and hands it back as its last act. This loop holds a sender, so `recv` cannot fail.
    let (give_back, tokens) = mpsc::sync_channel::<()>(job.concurrency);
    for _ in 0..job.concurrency {
        give_back.send(()).expect("the receiver is alive");
    }
    thread::scope(|scope| {
        for i in 0..job.requests {
            tokens.recv().expect("the loop holds a sender");
            let (client, job, tally, give_back) = (&client, &job, &tally, give_back.clone());
            thread::Builder::new()
                .stack_size(job.stack_size)
                .spawn_scoped(scope, move || {
                    // At each new most in flight, the OS's count of threads then (this one among
                    // them, the sampler's not): the peak is seen for certain, at the price of at
                    // most `concurrency` reads of /proc/self/status.
                    if tally.begin()
                        && let Ok(status) = Status::read()
                    {
                        tally.saw_threads(status.threads.saturating_sub(1));
                    }
                    let record = client.fetch(i, job.workload.input(i));
                    tally.end();
                    job.finish(record, tally);
                    _ = give_back.send(());
                })
                .map_err(|source| EngineError::Thread { number: i, source })?;
        }
        // `scope` joins every thread before returning.
        Ok(())
    })
}
