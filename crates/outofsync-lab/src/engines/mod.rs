//! The execution models under test, one file each and all of the same shape: `run(job, tally)`.
//!
//! What differs between engines is only *who waits and who computes*: which runtime or threads
//! carry the requests, and where the work on each response runs. Everything else is shared, so
//! the comparison measures the model and nothing else:
//!
//! - a request is sent by one of two clients that build identical [`Record`]s — [`Fetcher`](outofsync::Fetcher)
//!   (hyper, async) or [`BlockingClient`] (ureq, blocking), both HTTP/1.1 only, configured from the
//!   same [`Config`];
//! - the async engines share one loop (`event_loop`), the blocking ones one client (`blocking`);
//! - every record goes through [`EngineJob::finish`]: the workload's work, then the [`Tally`].
//!
//! Every thread an engine starts gets the same, explicit stack size ([`EngineJob::stack_size`]).

mod async_multi;
mod async_one;
mod blocking;
mod event_loop;
mod hybrid;
mod pool;
mod threads;

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

pub use blocking::BlockingClient;

use super::workload::Workload;
use outofsync::engine::{BuildError, Config};
use outofsync::record::Record;

/// An execution model.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
pub enum EngineKind {
    /// tokio's current-thread runtime: one thread, one event loop — asyncio's model.
    #[serde(rename = "async-1")]
    #[value(name = "async-1")]
    Async1,
    /// tokio's multi-thread runtime, one worker per core.
    #[serde(rename = "async-n")]
    #[value(name = "async-n")]
    AsyncN,
    /// One OS thread per request in flight, with a blocking client.
    #[serde(rename = "threads")]
    #[value(name = "threads")]
    Threads,
    /// A fixed pool of OS threads, with a blocking client.
    #[serde(rename = "pool")]
    #[value(name = "pool")]
    Pool,
    /// One event loop for the I/O, a pool of one thread per core for the CPU work.
    #[serde(rename = "hybrid")]
    #[value(name = "hybrid")]
    Hybrid,
}

impl EngineKind {
    /// Every engine, in report order.
    pub const ALL: [EngineKind; 5] =
        [EngineKind::Async1, EngineKind::AsyncN, EngineKind::Threads, EngineKind::Pool, EngineKind::Hybrid];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Async1 => "async-1",
            EngineKind::AsyncN => "async-n",
            EngineKind::Threads => "threads",
            EngineKind::Pool => "pool",
            EngineKind::Hybrid => "hybrid",
        }
    }

    /// The model, in a few words.
    pub fn model(self) -> &'static str {
        match self {
            EngineKind::Async1 => "tokio current-thread: one thread, one event loop (asyncio's model)",
            EngineKind::AsyncN => "tokio multi-thread: one worker per core, work on the workers",
            EngineKind::Threads => "one OS thread per request in flight, blocking client (ureq)",
            EngineKind::Pool => "a fixed pool of OS threads, blocking client (ureq)",
            EngineKind::Hybrid => "one event loop for I/O, CPU work on a pool of one thread per core",
        }
    }

    /// The engine's own source, for the report's "complexity" row (the shared parts are in
    /// [`SHARED_SOURCES`]).
    pub fn source(self) -> &'static str {
        match self {
            EngineKind::Async1 => include_str!("async_one.rs"),
            EngineKind::AsyncN => include_str!("async_multi.rs"),
            EngineKind::Threads => include_str!("threads.rs"),
            EngineKind::Pool => include_str!("pool.rs"),
            EngineKind::Hybrid => include_str!("hybrid.rs"),
        }
    }

    /// Runs every request of `job` and hands each record to `tally`; returns when all are tallied.
    ///
    /// # Errors
    /// The engine could not start: a runtime, a client or a thread could not be created.
    pub fn run(self, job: Arc<EngineJob>, tally: Arc<Tally>) -> Result<(), EngineError> {
        match self {
            EngineKind::Async1 => async_one::run(job, tally),
            EngineKind::AsyncN => async_multi::run(job, tally),
            EngineKind::Threads => threads::run(job, tally),
            EngineKind::Pool => pool::run(job, tally),
            EngineKind::Hybrid => hybrid::run(job, tally),
        }
    }
}

/// The code the engines share: the async loop and the blocking client, by file name.
pub const SHARED_SOURCES: [(&str, &str); 2] =
    [("event_loop.rs", include_str!("event_loop.rs")), ("blocking.rs", include_str!("blocking.rs"))];

/// Lines of code in `source`: not blank, not only a comment.
pub fn code_lines(source: &str) -> usize {
    // Unit tests at the end of a file are not the engine.
    let source = source.split("#[cfg(test)]").next().unwrap_or(source);
    source.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//")).count()
}

/// Why an engine could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The tokio runtime could not be built.
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(std::io::Error),
    /// The HTTP client could not be built.
    #[error("cannot build the client: {0}")]
    Client(#[from] BuildError),
    /// An OS thread could not be started (too many threads, or no memory for its stack).
    #[error("cannot start thread number {number}: {source}")]
    Thread {
        /// How many threads the engine had started before.
        number: u64,
        /// Why.
        source: std::io::Error,
    },
}

/// What an engine runs: the requests, how many at a time, and the shared settings.
#[derive(Clone, Debug)]
pub struct EngineJob {
    /// Builds request `i` and does the work of its response.
    pub workload: Workload,
    /// How many requests: `0..requests`.
    pub requests: u64,
    /// Requests in flight at once (the engine's own limit: permits, threads or pool size).
    pub concurrency: usize,
    /// The client settings every engine shares.
    pub config: Config,
    /// Threads of the `pool` engine (it never has more than `concurrency`).
    pub pool_size: usize,
    /// Threads for CPU work: the workers of `async-n`, the CPU pool of `hybrid`.
    pub cpu_threads: usize,
    /// The stack size of every thread an engine starts, in bytes.
    pub stack_size: usize,
}

impl EngineJob {
    /// The client settings of the lab: HTTP/1.1 only (ureq speaks nothing else), retries as
    /// `fetch` has them (both clients drive the same request machine), no `Accept-Encoding`
    /// (ureq is built without decompression, so neither client may ask for it), `concurrency`
    /// at once.
    pub fn client_config(concurrency: usize) -> Config {
        let mut config = Config::default();
        config.concurrency = concurrency;
        config.http = outofsync::engine::HttpVersion::Http1Only;
        config.connect_timeout = Duration::from_secs(30);
        // Retried as by `fetch`, but with short waits: the waits would otherwise be most of the
        // wall time of a workload whose failures are on purpose, in every engine alike.
        config.retry.backoff = Duration::from_millis(10);
        config.retry.max_backoff = Duration::from_millis(100);
        config.headers.remove(http::header::ACCEPT_ENCODING);
        config
    }

    /// The end of every request in every engine: the work on the response, then the tally.
    pub fn finish(&self, record: Record, tally: &Tally) {
        let work = self.workload.work(&record);
        tally.add(record, work);
    }
}

/// Counts the records of a run, and the requests in flight. One per run, shared by every thread of
/// the engine: the counts behind a mutex (held a few hundred nanoseconds per record, far below
/// the cost of a request), the requests in flight in two atomics.
#[derive(Debug)]
pub struct Tally {
    /// The server's address, taken out of the records' URLs before they are hashed: every cell
    /// has a server of its own, on a port of its own.
    base: String,
    counts: Mutex<Counts>,
    in_flight: AtomicU64,
    most_in_flight: AtomicU64,
    /// The most OS threads an engine saw at a new most in flight (see [`Tally::saw_threads`]).
    most_threads_seen: AtomicU64,
}

#[derive(Debug)]
struct Counts {
    records: u64,
    attempts: u64,
    ok: u64,
    failures: BTreeMap<String, u64>,
    latency_us: Histogram<u64>,
    records_digest: u64,
    work_digest: u64,
}

/// What a [`Tally`] counted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Records produced.
    pub records: u64,
    /// Requests sent, over all records: every attempt of every request (retries included).
    #[serde(default)]
    pub attempts: u64,
    /// Of which successful.
    pub ok: u64,
    /// Failed records by error kind.
    pub failures: BTreeMap<String, u64>,
    /// The sum of a hash of every record's JSON line with its timings zeroed: equal across engines
    /// exactly when they produced the same records.
    pub records_digest: String,
    /// The sum of every response's work digest: equal across engines when they did the same work.
    pub work_digest: String,
    /// Request latency (send to last body byte, as the record's `elapsed_ms`), in milliseconds.
    pub latency_ms: Quantiles,
    /// The most requests the engine had in flight at once: started, record not yet back.
    pub in_flight: u64,
}

/// Latency quantiles, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl Tally {
    /// An empty tally for records of requests to the server at `base` (`http://IP:PORT`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            counts: Mutex::new(Counts {
                records: 0,
                attempts: 0,
                ok: 0,
                failures: BTreeMap::new(),
                latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
                records_digest: 0,
                work_digest: 0,
            }),
            in_flight: AtomicU64::new(0),
            most_in_flight: AtomicU64::new(0),
            most_threads_seen: AtomicU64::new(0),
        }
    }

    /// A request starts: the engine has handed it to its client. Every engine calls this at the
    /// same point, so that "in flight" means the same in all of them. True when this makes a new
    /// most in flight.
    pub fn begin(&self) -> bool {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.most_in_flight.fetch_max(now, Ordering::Relaxed) < now
    }

    /// The OS's thread count, read by an engine at a new most in flight: the sampler reads it
    /// every tick and, on a busy machine, can miss the moment of the peak.
    pub fn saw_threads(&self, threads: u64) {
        self.most_threads_seen.fetch_max(threads, Ordering::Relaxed);
    }

    /// The most threads passed to [`Tally::saw_threads`].
    pub fn threads_seen(&self) -> u64 {
        self.most_threads_seen.load(Ordering::Relaxed)
    }

    /// A request ended: its record is back from the client (its work comes after).
    pub fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts one record and the digest of its work.
    pub fn add(&self, mut record: Record, work: u64) {
        let latency_us = (record.elapsed_ms * 1000.0).round().max(1.0) as u64;
        // Timings and the server's port differ from run to run; everything else in the line must not.
        record.elapsed_ms = 0.0;
        record.history.iter_mut().for_each(|a| a.elapsed_ms = 0.0);
        for url in [&mut record.url, &mut record.final_url].into_iter().flatten() {
            if let Some(path) = url.strip_prefix(&self.base) {
                *url = path.to_owned();
            }
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        hasher.write(record.to_json_line().as_bytes());
        let line = hasher.finish();

        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.records += 1;
        counts.attempts += u64::from(record.attempts);
        if record.ok {
            counts.ok += 1;
        }
        if let Some(kind) = record.error_kind() {
            *counts.failures.entry(kind.as_str().to_owned()).or_default() += 1;
        }
        counts.latency_us.saturating_record(latency_us);
        // Sums, not a running hash: records complete in a different order in every engine.
        counts.records_digest = counts.records_digest.wrapping_add(line);
        counts.work_digest = counts.work_digest.wrapping_add(work);
    }

    /// What was counted so far.
    pub fn totals(&self) -> Totals {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &counts.latency_us;
        Totals {
            records: counts.records,
            attempts: counts.attempts,
            ok: counts.ok,
            failures: counts.failures.clone(),
            records_digest: format!("{:016x}", counts.records_digest),
            work_digest: format!("{:016x}", counts.work_digest),
            latency_ms: Quantiles {
                p50: ms(h.value_at_quantile(0.5)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
            },
            in_flight: self.most_in_flight.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_ignores_timing_and_order_but_not_content() {
        let record = |i: u64, ms: f64, base: &str| {
            let mut record = Record::default();
            (record.i, record.url, record.ok) = (i, Some(format!("{base}/json?id={i}")), true);
            (record.status, record.elapsed_ms) = (Some(200), ms);
            record
        };
        let (a, b) = (Tally::new("http://127.0.0.1:1"), Tally::new("http://127.0.0.1:2/"));
        a.add(record(0, 1.0, "http://127.0.0.1:1"), 7);
        a.add(record(1, 2.0, "http://127.0.0.1:1"), 9);
        b.add(record(1, 30.0, "http://127.0.0.1:2"), 9);
        b.add(record(0, 40.0, "http://127.0.0.1:2"), 7);
        assert_eq!(a.totals().records_digest, b.totals().records_digest);
        assert_eq!(a.totals().work_digest, b.totals().work_digest);
        let c = Tally::new("http://127.0.0.1:1");
        c.add(record(0, 1.0, "http://127.0.0.1:1"), 7);
        let mut created = record(1, 2.0, "http://127.0.0.1:1");
        created.status = Some(201);
        c.add(created, 9);
        assert_ne!(a.totals().records_digest, c.totals().records_digest);
    }

    #[test]
    fn code_lines_skip_blank_lines_comments_and_tests() {
        assert_eq!(
            code_lines("//! doc\n\nfn a() {}\n    // why\nfn b() {}\n#[cfg(test)]\nmod tests {}\n"),
            2
        );
    }
}
