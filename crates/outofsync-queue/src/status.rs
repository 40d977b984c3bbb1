//! [`Status`]: how far a job is, who works on it, and what went wrong, for `outofsync status`.

use std::fmt;

use redis::Value;
use serde::Serialize;

use crate::keys::GROUP;
use crate::queue::{Queue, Result};
use crate::redis::RedisQueue;

/// What one pipeline reads: the server's time, the lengths of the task and result streams, the
/// collected count, the heartbeats, and the pending tasks.
type Snapshot = ((u64, u64), u64, u64, (Option<u64>,), Vec<(String, u64)>, Value);

/// A worker is alive while its last heartbeat is younger than this many leases.
const ALIVE_LEASES: u64 = 2;

/// A job's state, as `outofsync status` shows it (and `--json` writes it).
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The job.
    pub job: String,
    /// `submitting`, `running` or `done`.
    pub status: String,
    /// Inputs submitted so far.
    pub submitted: u64,
    /// Inputs in all, once every one is submitted.
    pub total: Option<u64>,
    /// Inputs whose record is published.
    pub finished: u64,
    /// Records collected, once the job is done.
    pub collected: Option<u64>,
    /// Tasks not yet finished: waiting or held by a worker.
    pub tasks_left: u64,
    /// Tasks held by workers now.
    pub pending: u64,
    /// The most deliveries of a task held now.
    pub max_deliveries_pending: u64,
    /// Records published and not yet collected.
    pub results_waiting: u64,
    /// Tasks taken over from workers that stopped.
    pub reclaims: u64,
    /// Inputs ended as poison.
    pub poisoned: u64,
    /// The lease, in ms.
    pub lease_ms: u64,
    /// Workers whose heartbeat is recent.
    pub workers_alive: u64,
    /// Every worker that has worked on the job, with the age of its last heartbeat.
    pub workers: Vec<Worker>,
    /// The Redis server's version.
    pub redis_version: String,
}

/// A worker of the job.
#[derive(Clone, Debug, Serialize)]
pub struct Worker {
    /// Its name (`host-pid-random`).
    pub name: String,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms: u64,
    /// Whether it is alive (a heartbeat within two leases).
    pub alive: bool,
    /// Tasks it holds.
    pub pending: u64,
}

/// The status of `queue`'s job.
///
/// # Errors
/// The job is not there, or Redis cannot be reached.
pub async fn status(queue: &RedisQueue) -> Result<Status> {
    let info = queue.info().await?;
    let keys = queue.keys();
    let mut con = queue.connections().cmd.clone();
    let (time, tasks_left, results_waiting, collected, beats, pending): Snapshot = redis::pipe()
        .cmd("TIME")
        .cmd("XLEN")
        .arg(&keys.tasks)
        .cmd("XLEN")
        .arg(&keys.results)
        .cmd("HMGET")
        .arg(&keys.meta)
        .arg("collected")
        .cmd("HGETALL")
        .arg(&keys.workers)
        .cmd("XPENDING")
        .arg(&keys.tasks)
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(1000)
        .query_async(&mut con)
        .await?;
    let now_ms = time.0 * 1000 + time.1 / 1000;
    let lease_ms = info.spec.lease.as_millis() as u64;
    let mut by_worker = std::collections::HashMap::<String, u64>::new();
    let (mut held, mut max_deliveries) = (0, 0);
    if let Value::Array(entries) = pending {
        for entry in entries {
            if let Value::Array(parts) = entry
                && let [_, Value::BulkString(name), _, Value::Int(times)] = parts.as_slice()
            {
                held += 1;
                max_deliveries = max_deliveries.max(*times as u64);
                *by_worker.entry(String::from_utf8_lossy(name).into_owned()).or_default() += 1;
            }
        }
    }
    let mut workers: Vec<Worker> = beats
        .into_iter()
        .map(|(name, beat)| {
            let last_seen_ms = now_ms.saturating_sub(beat);
            let pending = by_worker.get(&name).copied().unwrap_or(0);
            Worker { alive: last_seen_ms < ALIVE_LEASES * lease_ms, name, last_seen_ms, pending }
        })
        .collect();
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Status {
        job: info.name,
        status: info.status,
        submitted: info.submitted,
        total: info.total,
        finished: info.finished,
        collected: collected.0.filter(|&n| n > 0),
        tasks_left,
        pending: held,
        max_deliveries_pending: max_deliveries,
        results_waiting,
        reclaims: info.reclaims,
        poisoned: info.poisoned,
        lease_ms,
        workers_alive: workers.iter().filter(|w| w.alive).count() as u64,
        workers,
        redis_version: queue.connections().version.clone(),
    })
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total =
            self.total.map_or_else(|| format!("{}+ (still submitting)", self.submitted), |t| t.to_string());
        writeln!(f, "job {}: {} (Redis {})", self.job, self.status, self.redis_version)?;
        writeln!(
            f,
            "  inputs:   {total}; {} finished, {} left ({} held by workers)",
            self.finished, self.tasks_left, self.pending
        )?;
        let collected = self.collected.map_or_else(String::new, |n| format!(", {n} collected"));
        writeln!(f, "  records:  {} waiting for the collector{collected}", self.results_waiting)?;
        writeln!(
            f,
            "  reclaims: {} (tasks taken over from workers that stopped); {} poisoned",
            self.reclaims, self.poisoned
        )?;
        writeln!(
            f,
            "  workers:  {} alive of {} (lease {} ms)",
            self.workers_alive,
            self.workers.len(),
            self.lease_ms
        )?;
        for w in &self.workers {
            let state = if w.alive { "alive" } else { "gone" };
            writeln!(f, "    {} {state}, seen {} ms ago, holding {}", w.name, w.last_seen_ms, w.pending)?;
        }
        Ok(())
    }
}
