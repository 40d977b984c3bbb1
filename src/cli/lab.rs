//! `outofsync lab` and its hidden child, `outofsync lab-worker`.

use std::path::PathBuf;

use clap::Args;
use outofsync_lab::{EngineKind, WorkloadKind};

/// Measure async against threads: the same requests against the same server, run by five
/// execution models, with the note's claims restated beside the evidence.
///
/// Engines: async-1 (tokio current-thread: one thread, one event loop, asyncio's model), async-n
/// (tokio multi-thread, a worker per core), threads (one OS thread per request in flight, blocking
/// ureq), pool (a fixed pool of 64 threads, blocking ureq), hybrid (one event loop for I/O, a CPU
/// pool of a thread per core).
///
/// Workloads: io (GET /delay/1000, swept over 10, 100, 1,000 and 10,000 requests in flight), cpu
/// (32 in flight; each response a 32 KiB JSON document, parsed, reshaped, re-serialised and hashed
/// 40 times), mixed (GET /delay/100 and the cpu request alternating, 256 in flight, 1 in 100 a 503).
///
/// Every cell runs in a fresh `outofsync lab-worker` process against a fresh `outofsync serve`
/// process, so that CPU time, context switches, peak memory (VmHWM), threads and file descriptors
/// are the engine's alone. The full grid takes a few minutes on two cores; --quick (io on
/// /delay/100 up to 1,000 in flight, fewer requests) under a minute. Build with --release for
/// numbers that mean something, and run it on a quiet machine: other work competes for the cores.
#[derive(Args, Debug)]
#[command(after_long_help = EXAMPLES)]
pub struct LabArgs {
    /// The smaller grid, for CI and the demo: io up to 1,000 in flight, fewer requests.
    #[arg(long)]
    pub quick: bool,
    /// Write a self-contained HTML page with the tables and charts (inline SVG).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write every number as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Measure nothing: report on a run saved earlier with --json (and draw its page with --html).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["quick", "engines", "workloads", "concurrency", "json"])]
    pub from: Option<PathBuf>,
    /// Engines to run (repeatable or comma-separated) [default: all].
    #[arg(long = "engine", value_name = "ENGINE", value_delimiter = ',')]
    pub engines: Vec<EngineKind>,
    /// Workloads to run (repeatable or comma-separated) [default: all].
    #[arg(long = "workload", value_name = "WORKLOAD", value_delimiter = ',')]
    pub workloads: Vec<WorkloadKind>,
    /// Requests in flight for the io sweep, comma-separated [default: 10,100,1000,10000; --quick: up to 1000].
    #[arg(long, value_name = "N,…", value_delimiter = ',')]
    pub concurrency: Vec<usize>,
    /// Threads of the pool engine.
    #[arg(long, value_name = "N", default_value_t = outofsync_lab::plan::POOL_SIZE,
          value_parser = clap::value_parser!(usize))]
    pub pool_size: usize,
    /// No progress lines on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

const EXAMPLES: &str = "\
Examples:
  outofsync lab --quick                              # under a minute
  outofsync lab --html lab.html --json lab.json      # the full grid, a few minutes
  outofsync lab --workload io --engine async-1,threads --concurrency 100,10000
  outofsync lab --from lab.json --html lab.html       # the page of a saved run, without measuring";

/// Measure one lab cell in this process and print it as JSON (started by `outofsync lab`).
#[derive(Args, Debug)]
pub struct LabWorkerArgs {
    /// The cell, as JSON.
    #[arg(long, value_name = "JSON")]
    pub cell: String,
}
