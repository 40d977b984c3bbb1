//! The child side of a lab run: one cell, measured in this process, which does nothing else.
//!
//! `outofsync lab-worker` calls [`measure`] and prints the [`Measurement`] as JSON. A process per
//! cell is what makes the counters honest: CPU time, context switches and the memory high-water
//! mark are per process, and a fresh one carries nothing over from another engine's run (no warm
//! allocator, no pooled connections, no threads left behind).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::LabError;
use super::engines::{EngineKind, Tally, Totals};
use super::metrics::{self, Sampler, Status, Usage};
use super::plan::Cell;
use super::workload::WorkloadKind;

/// How often the thread count is sampled (descriptors: every tenth time).
const TICK: Duration = Duration::from_millis(2);

/// What one cell measured. Counters are deltas over the measured phase: from just before the
/// engine starts (its runtime, client and threads included) to just after its last record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The engine.
    pub engine: EngineKind,
    /// The workload.
    pub workload: WorkloadKind,
    /// Requests in flight, as asked.
    pub concurrency: usize,
    /// Requests sent.
    pub requests: u64,
    /// What the records were.
    #[serde(flatten)]
    pub totals: Totals,
    /// Wall time of the measured phase, in seconds.
    pub elapsed_s: f64,
    /// Records per second of wall time.
    pub throughput: f64,
    /// CPU time and context switches of the engine (the sampler's own taken out).
    pub usage: Usage,
    /// Resident memory when the measured phase started, in bytes.
    pub rss_start: u64,
    /// The most resident memory during the measured phase, in bytes (`VmHWM`, reset at the start).
    pub rss_peak: u64,
    /// The most OS threads at once, the thread that runs the engine included, the sampler's not.
    pub threads: u64,
    /// The most file descriptors open at once, beyond those open before the engine started.
    pub fds: u64,
    /// The soft limit on open files the run had.
    pub open_files_limit: u64,
}

/// Runs `cell` in this process and measures it.
///
/// The thread that calls this runs the engine (for `async-1` it is the engine's only thread), so
/// call it from a process's main thread with nothing else running.
///
/// # Errors
/// `/proc` cannot be read, or the engine could not start.
pub fn measure(cell: &Cell) -> Result<Measurement, LabError> {
    let proc_error = |source| LabError::Io { what: "cannot read /proc/self".into(), source };
    let job = Arc::new(cell.job());
    let tally = Arc::new(Tally::new(&cell.base));
    // Counted before the sampler starts: its first reads of /proc (a directory handle, a status
    // file) would otherwise be open at this moment, raise the baseline and under-count the peak.
    let fds_before = metrics::open_fds().map_err(proc_error)?;
    let sampler = Sampler::start(TICK).map_err(proc_error)?;
    metrics::reset_peak_rss().map_err(proc_error)?;
    let start = Status::read().map_err(proc_error)?;
    let usage_before = Usage::process();
    let started = Instant::now();

    let outcome = cell.engine.run(job, tally.clone());

    let elapsed = started.elapsed();
    // The sampler ends before the process is read, so all of its cost is in what it returns.
    let peaks = sampler.finish();
    let usage = Usage::process().minus(usage_before).minus(peaks.cost);
    let end = Status::read().map_err(proc_error)?;
    outcome?;

    let totals = tally.totals();
    let elapsed_s = elapsed.as_secs_f64();
    Ok(Measurement {
        engine: cell.engine,
        workload: cell.workload,
        concurrency: cell.concurrency,
        requests: cell.requests,
        throughput: if elapsed_s > 0.0 { totals.records as f64 / elapsed_s } else { 0.0 },
        totals,
        elapsed_s,
        usage,
        rss_start: start.rss,
        rss_peak: end.peak_rss.max(start.rss),
        threads: peaks.threads.max(tally.threads_seen()),
        fds: peaks.fds.saturating_sub(fds_before),
        open_files_limit: metrics::open_files_limit().0,
    })
}
