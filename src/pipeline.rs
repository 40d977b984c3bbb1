//! A whole fetch run: read the input, fetch, write the records, count, show progress. What
//! `outofsync fetch` and `outofsync demo` both run.
//!
//! Request loop → channel → this task (the aggregator) → writer thread: the fetch tasks only
//! produce records; this one task counts them ([`Stats`] needs no lock) and batches them for the
//! writer; the progress bar only reads atomics.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use futures_util::{FutureExt, StreamExt};

use crate::engine::Fetcher;
use crate::output::{Destination, Sink, WriteError};
use crate::progress::Progress;
use crate::request::{LineDefaults, Reader, Source, reader};
use crate::stats::{Counters, Stats, Summary};

/// What to run.
#[derive(Clone, Debug)]
pub struct Job {
    /// Where requests come from, in order.
    pub sources: Vec<Source>,
    /// What the command line says about requests their line does not describe.
    pub defaults: LineDefaults,
    /// Where records go.
    pub output: Destination,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The counts.
    pub summary: Summary,
    /// The reader of stdout went away before the end (not an error: `| head` does that).
    pub output_closed: bool,
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The input could not be read.
    #[error("{0}")]
    Input(io::Error),
    /// The records could not be written.
    #[error("{0}")]
    Output(WriteError),
}

/// Runs `job` with `fetcher` to the end of its input.
///
/// # Errors
/// The input cannot be read or the output cannot be written; records already written stay.
pub async fn run(fetcher: &Fetcher, job: Job) -> Result<Outcome, JobError> {
    let started = Instant::now();
    let reader = Reader::spawn(job.sources.clone(), job.defaults.clone()).map_err(JobError::Input)?;
    let mut sink = Sink::open(&job.output).map_err(JobError::Output)?;
    let counters = Arc::new(Counters::default());
    let progress = if job.progress { Progress::start(counters.clone()) } else { Progress::hidden() };
    // With pagination an input makes an unknown number of records: no total, just a count.
    if job.progress && fetcher.config().paginate.is_none() {
        let total = progress.total_handle();
        let (sources, defaults) = (job.sources, job.defaults);
        tokio::task::spawn_blocking(move || {
            if let Some(n) = reader::count_inputs(&sources, &defaults) {
                total.store(n, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }

    let (inputs, read_status) = reader.into_parts();
    let mut records = fetcher.fetch_all(inputs);
    let mut stats = Stats::default();
    loop {
        // Batch while records are ready; hand the batch over as soon as none is, so records
        // reach the output promptly when they come slowly.
        let record = match records.next().now_or_never() {
            Some(Some(record)) => record,
            Some(None) => break,
            None => {
                if sink.flush().await.is_err() {
                    break;
                }
                match records.next().await {
                    Some(record) => record,
                    None => break,
                }
            }
        };
        stats.observe(&record);
        counters.count(&record);
        if sink.push(&record).await.is_err() {
            break;
        }
    }
    drop(records);
    let written = sink.finish().await;
    progress.finish();
    if let Some(e) = read_status.take_error() {
        return Err(JobError::Input(e));
    }
    let output_closed = match written {
        Ok(()) => false,
        Err(WriteError::BrokenPipe) => true,
        Err(e) => return Err(JobError::Output(e)),
    };
    Ok(Outcome { summary: stats.summary(started.elapsed()), output_closed })
}
