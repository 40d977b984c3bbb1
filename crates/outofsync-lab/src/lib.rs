//! The lab (`outofsync lab`): the same requests against the same server, run by different
//! execution models, measured, and set against the claims of the note this project grew from.
//!
//! # Layout
//!
//! - [`engines`]: the execution models, one file each, behind [`EngineKind`].
//! - [`workload`]: the requests of `io`, `cpu` and `mixed`, and the fixed work per response.
//! - [`plan`]: the grid of cells and the settings that keep the comparison fair.
//! - [`metrics`]: `getrusage`, `/proc/self/status`, `/proc/self/fd`, and the peak sampler.
//! - [`worker`]: one cell measured in the current process (the hidden `lab-worker` command).
//! - `process`: the server and worker processes of a run.
//! - [`evidence`]: the note's table, row by row, with what the run measured beside each claim.
//! - [`report`] and [`html`]: the terminal tables and the self-contained page with its charts.
//!
//! # How a run goes
//!
//! [`run`] starts `outofsync serve` as a child process, then for every cell starts
//! `outofsync lab-worker`, which runs one engine on one workload at one concurrency and prints its
//! [`Measurement`]; the server's `/stats` adds how many requests were really in flight. One
//! process per cell, so every counter is that engine's alone.

pub mod engines;
pub mod evidence;
pub mod html;
pub mod metrics;
pub mod plan;
mod process;
pub mod report;
pub mod worker;
pub mod workload;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use engines::{EngineError, EngineKind};
pub use plan::{Cell, Plan};
pub use worker::Measurement;
pub use workload::WorkloadKind;

/// Why a lab run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// An engine could not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A process or a file could not be used.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The server process misbehaved.
    #[error("the lab's server: {0}")]
    Server(String),
    /// A worker process failed.
    #[error("the worker for {cell} failed: {message}")]
    Worker {
        /// The cell it ran.
        cell: String,
        /// What it said.
        message: String,
    },
}

/// How to run the lab.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// The `outofsync` binary, started for the server and for every cell.
    pub exe: PathBuf,
    /// What to measure.
    pub plan: Plan,
}

/// One cell's results: the worker's measurement and what the server saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// What the worker measured.
    #[serde(flatten)]
    pub measurement: Measurement,
    /// The most requests in flight at once as the server counted them, from a request's arrival to
    /// its last byte sent. Where the server is the slow side (`io`) it shows how many of the
    /// engine's requests really were out at once; on a fast endpoint they spend their time in the
    /// client instead.
    pub server_in_flight: u64,
    /// Requests the server answered: the sum of the records' attempts (retries included).
    pub server_requests: u64,
    /// Peak memory growth over the run divided by the most requests the engine had in flight, in
    /// bytes.
    pub rss_per_in_flight: f64,
}

/// A whole run: the machine, the plan and every cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabReport {
    /// Where it ran.
    pub machine: Machine,
    /// What it ran.
    pub plan: Plan,
    /// The results, in the plan's order.
    pub cells: Vec<CellResult>,
}

/// The machine a run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Cores available to the process.
    pub cores: usize,
    /// The kernel (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// Whether this binary was built with optimisations (numbers of a debug build are not the
    /// engines' but the compiler's).
    pub optimized: bool,
    /// The load average (1, 5 and 15 minutes) when the run started: other work on the machine
    /// competes with the engines for the cores.
    pub load_before: [f64; 3],
    /// The load average when the run ended.
    pub load_after: [f64; 3],
    /// The nice value the server processes ran at (-10 when raising their priority was allowed).
    pub server_nice: Option<i32>,
}

impl Machine {
    /// This machine.
    pub fn current() -> Self {
        Self {
            cores: plan::cores(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into()),
            optimized: !cfg!(debug_assertions),
            load_before: Self::load(),
            load_after: Self::load(),
            server_nice: None,
        }
    }

    /// The load average now (`/proc/loadavg`), zeros where it cannot be read.
    pub fn load() -> [f64; 3] {
        let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().unwrap_or(0.0));
        [(); 3].map(|()| fields.next().unwrap_or(0.0))
    }
}

impl LabReport {
    /// The results of `engine` on `workload`, in order of concurrency.
    pub fn series(&self, engine: EngineKind, workload: WorkloadKind) -> Vec<&CellResult> {
        let mut cells: Vec<&CellResult> = self
            .cells
            .iter()
            .filter(|c| c.measurement.engine == engine && c.measurement.workload == workload)
            .collect();
        cells.sort_by_key(|c| c.measurement.concurrency);
        cells
    }

    /// The engines that appear in the results, in report order.
    pub fn engines(&self) -> Vec<EngineKind> {
        EngineKind::ALL
            .into_iter()
            .filter(|&e| self.cells.iter().any(|c| c.measurement.engine == e))
            .collect()
    }
}

/// Runs every cell of `config.plan`, each in a fresh worker process against one server process,
/// and calls `progress` after each.
///
/// # Errors
/// A process could not be started, the server misbehaved, or a worker failed. A failed request is
/// not an error: it is a record, counted in its cell.
pub fn run(config: &LabConfig, mut progress: impl FnMut(&CellResult)) -> Result<LabReport, LabError> {
    let load_before = Machine::load();
    let mut server_nice = None;
    let mut cells = Vec::new();
    // The cells need the server's address, which is only known once it runs: plan against a
    // placeholder and point each cell at its own server.
    for mut cell in config.plan.cells("") {
        let server = process::ServerProcess::start(&config.exe, config.plan.server_threads)?;
        server_nice = server.priority().or(server_nice);
        cell.base = server.base().to_owned();
        let measurement = process::run_worker(&config.exe, &cell)?;
        let seen = server.stats()?;
        drop(server);
        let growth = measurement.rss_peak.saturating_sub(measurement.rss_start) as f64;
        let result = CellResult {
            rss_per_in_flight: growth / measurement.totals.in_flight.max(1) as f64,
            server_in_flight: seen.max_in_flight,
            server_requests: seen.requests,
            measurement,
        };
        progress(&result);
        cells.push(result);
    }
    let machine = Machine { load_before, load_after: Machine::load(), server_nice, ..Machine::current() };
    Ok(LabReport { machine, plan: config.plan.clone(), cells })
}
