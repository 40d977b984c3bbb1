//! What a lab run measures: the grid of engines × workloads × concurrency, and the fixed settings
//! that make the engines comparable. [`Plan::full`] is `outofsync lab`, [`Plan::quick`] is
//! `outofsync lab --quick` (under a minute on two cores, for CI and the demo).

use serde::{Deserialize, Serialize};

use super::engines::{EngineJob, EngineKind};
use super::workload::{Workload, WorkloadKind, WorkloadParams};

/// The stack of every thread the engines start: 128 KiB. Rust's default of 2 MiB would reserve
/// 20 GiB of address space for 10,000 threads; resident memory counts only the pages a stack
/// touches, which is the same few KiB whatever the reservation. A debug build (whose numbers the
/// lab refuses to vouch for anyway) gets 1 MiB: unoptimised futures are many times larger and
/// overflow 128 KiB.
pub const STACK_BYTES: usize = if cfg!(debug_assertions) { 1024 * 1024 } else { 128 * 1024 };

/// The pool engine's size: 64 threads, a common default for a server's worker pool. Every thread
/// blocks on one request, so this is also the most requests the pool ever has in flight.
pub const POOL_SIZE: usize = 64;

/// The pool runs an `io` point only up to this many times its size in flight. Beyond, its threads
/// would send the same requests 64 at a time for many minutes, to show again what the smaller
/// points already show: a pool's requests in flight are its size.
pub const POOL_IO_REACH: usize = 16;

/// A lab run: which cells, and the settings shared by all of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The engines, each run on every cell.
    pub engines: Vec<EngineKind>,
    /// The workloads.
    pub workloads: Vec<WorkloadKind>,
    /// The sweep of the `io` workload: requests in flight.
    pub io_concurrency: Vec<usize>,
    /// `io` sends `max(concurrency × io_rounds, io_min_requests)` requests, so every point of the
    /// sweep keeps its requests in flight for several delays.
    pub io_rounds: u64,
    /// The fewest requests of an `io` cell.
    pub io_min_requests: u64,
    /// Requests in flight in the `cpu` workload.
    pub cpu_concurrency: usize,
    /// Requests of the `cpu` workload.
    pub cpu_requests: u64,
    /// Requests in flight in the `mixed` workload.
    pub mixed_concurrency: usize,
    /// Requests of the `mixed` workload.
    pub mixed_requests: u64,
    /// How long the slow endpoint waits in `io`, in milliseconds. It must be long enough for an
    /// engine to open every connection of the largest point before the first answers come back,
    /// or that many requests are never in flight at once.
    pub io_delay_ms: u64,
    /// How long the slow endpoint waits in `mixed`, in milliseconds.
    pub mixed_delay_ms: u64,
    /// The size of the heavy document (`cpu` and `mixed`), in bytes.
    pub doc_bytes: usize,
    /// How many times the work on a heavy document hashes it.
    pub hash_rounds: u32,
    /// Threads of the `pool` engine.
    pub pool_size: usize,
    /// Threads that compute: the workers of `async-n` and the CPU pool of `hybrid` (one per core).
    pub cpu_threads: usize,
    /// The stack size of every engine thread, in bytes.
    pub stack_size: usize,
    /// Threads of the server process.
    pub server_threads: usize,
}

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Plan {
    /// The whole grid: `io` at 10 to 10,000 in flight on a one-second endpoint, `cpu` and `mixed`; a
    /// few minutes on two cores, a good part of it the `pool` engine working through 2,000 slow
    /// requests 64 at a time.
    pub fn full() -> Self {
        Self {
            engines: EngineKind::ALL.to_vec(),
            workloads: WorkloadKind::ALL.to_vec(),
            io_concurrency: vec![10, 100, 1_000, 10_000],
            io_rounds: 2,
            io_min_requests: 20,
            cpu_concurrency: 32,
            cpu_requests: 8_000,
            mixed_concurrency: 256,
            mixed_requests: 6_000,
            io_delay_ms: 1_000,
            mixed_delay_ms: 100,
            doc_bytes: 32 * 1024,
            hash_rounds: 40,
            pool_size: POOL_SIZE,
            cpu_threads: cores(),
            stack_size: STACK_BYTES,
            server_threads: 1,
        }
    }

    /// A smaller grid that keeps every engine and workload: `io` up to 1,000 in flight on a
    /// 100 ms endpoint, fewer requests.
    pub fn quick() -> Self {
        Self {
            io_concurrency: vec![10, 100, 1_000],
            io_min_requests: 100,
            io_delay_ms: 100,
            cpu_requests: 1_200,
            mixed_concurrency: 100,
            mixed_requests: 1_000,
            ..Self::full()
        }
    }

    /// The workload parameters of `workload`.
    pub fn params(&self, workload: WorkloadKind) -> WorkloadParams {
        WorkloadParams {
            delay_ms: if workload == WorkloadKind::Mixed { self.mixed_delay_ms } else { self.io_delay_ms },
            doc_bytes: self.doc_bytes,
            hash_rounds: self.hash_rounds,
        }
    }

    /// Whether `engine` runs the `io` point of `concurrency` (see [`POOL_IO_REACH`]).
    pub fn runs(&self, engine: EngineKind, workload: WorkloadKind, concurrency: usize) -> bool {
        engine != EngineKind::Pool
            || workload != WorkloadKind::Io
            || concurrency <= self.pool_size.saturating_mul(POOL_IO_REACH)
    }

    /// Every cell of the plan against the server at `base`, grouped by workload and concurrency so
    /// that the engines of one comparison run back to back.
    pub fn cells(&self, base: &str) -> Vec<Cell> {
        let mut cells = Vec::new();
        for &workload in &self.workloads {
            let points: Vec<(usize, u64)> = match workload {
                WorkloadKind::Io => self
                    .io_concurrency
                    .iter()
                    .map(|&c| (c, (c as u64 * self.io_rounds).max(self.io_min_requests)))
                    .collect(),
                WorkloadKind::Cpu => vec![(self.cpu_concurrency, self.cpu_requests)],
                WorkloadKind::Mixed => vec![(self.mixed_concurrency, self.mixed_requests)],
            };
            for (concurrency, requests) in points {
                for &engine in self.engines.iter().filter(|&&e| self.runs(e, workload, concurrency)) {
                    cells.push(Cell {
                        engine,
                        workload,
                        concurrency,
                        requests,
                        base: base.to_owned(),
                        params: self.params(workload),
                        pool_size: self.pool_size,
                        cpu_threads: self.cpu_threads,
                        stack_size: self.stack_size,
                    });
                }
            }
        }
        cells
    }
}

/// One measurement: one engine, one workload, one concurrency, run in a process of its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The engine.
    pub engine: EngineKind,
    /// The workload.
    pub workload: WorkloadKind,
    /// Requests in flight (asked for; the `pool` engine caps it at its size).
    pub concurrency: usize,
    /// Requests sent.
    pub requests: u64,
    /// The server, `http://IP:PORT`.
    pub base: String,
    /// The workload's parameters.
    pub params: WorkloadParams,
    /// Threads of the `pool` engine.
    pub pool_size: usize,
    /// Threads that compute in `async-n` and `hybrid`.
    pub cpu_threads: usize,
    /// The stack size of every engine thread, in bytes.
    pub stack_size: usize,
}

impl Cell {
    /// The engine's job for this cell.
    pub fn job(&self) -> EngineJob {
        EngineJob {
            workload: Workload::new(self.workload, &self.base, self.params.clone()),
            requests: self.requests,
            concurrency: self.concurrency,
            config: EngineJob::client_config(self.concurrency),
            pool_size: self.pool_size,
            cpu_threads: self.cpu_threads,
            stack_size: self.stack_size,
        }
    }

    /// `io × 1000 × threads`, for messages.
    pub fn label(&self) -> String {
        format!("{} × {} in flight × {}", self.workload.name(), self.concurrency, self.engine.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_runs_every_point_and_quick_is_a_subset() {
        let full = Plan::full().cells("http://127.0.0.1:1");
        // Less the pool at 10,000 in flight.
        assert_eq!(full.len(), EngineKind::ALL.len() * (4 + 1 + 1) - 1);
        assert!(!full.iter().any(|c| c.engine == EngineKind::Pool && c.concurrency == 10_000));
        let quick = Plan::quick().cells("http://127.0.0.1:1");
        assert_eq!(quick.len(), EngineKind::ALL.len() * (3 + 1 + 1));
        let io_10k = full.iter().find(|c| c.workload == WorkloadKind::Io && c.concurrency == 10_000).unwrap();
        assert_eq!(io_10k.requests, 20_000);
        let io_10 = quick.iter().find(|c| c.workload == WorkloadKind::Io && c.concurrency == 10).unwrap();
        assert_eq!(io_10.requests, 100);
        assert!(quick.iter().all(|c| c.params.delay_ms == 100));
    }
}
