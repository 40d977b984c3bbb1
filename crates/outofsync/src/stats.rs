//! Counting what happened: totals, failures by kind, statuses, and a latency histogram; the
//! end-of-run [`Summary`] in text and JSON.
//!
//! [`Stats`] is fed by the single task that consumes records, so it needs no locks; what the
//! progress bar shows it reads from [`Counters`], three atomics that the same task bumps.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::record::{ErrorKind, Record};

/// Running totals for a live display, updated with relaxed atomics (exactness at any instant is
/// not needed; the final summary comes from [`Stats`]).
#[derive(Debug, Default)]
pub struct Counters {
    /// Records produced.
    pub done: AtomicU64,
    /// Of which successful.
    pub ok: AtomicU64,
    /// Of which failed.
    pub failed: AtomicU64,
}

impl Counters {
    /// Counts one record.
    pub fn count(&self, record: &Record) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if record.ok {
            self.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Everything counted over a run.
#[derive(Debug)]
pub struct Stats {
    total: u64,
    ok: u64,
    by_kind: BTreeMap<ErrorKind, u64>,
    by_status: BTreeMap<u16, u64>,
    attempts: u64,
    bytes: u64,
    /// Latency of requests that were sent, in microseconds.
    latency: Histogram<u64>,
    walks_cut: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            total: 0,
            ok: 0,
            by_kind: BTreeMap::new(),
            by_status: BTreeMap::new(),
            attempts: 0,
            bytes: 0,
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            walks_cut: 0,
        }
    }
}

impl Summary {
    /// Whether the run left something undone that the output shows: a failed record, or a walk cut
    /// by `--max-pages` (exit code 1 rather than 0).
    pub fn incomplete(&self) -> bool {
        self.failed > 0 || self.walks_cut > 0
    }
}

impl Stats {
    /// Counts one record.
    pub fn observe(&mut self, record: &Record) {
        self.total += 1;
        if record.ok {
            self.ok += 1;
        }
        if let Some(kind) = record.error_kind() {
            *self.by_kind.entry(kind).or_default() += 1;
        }
        if let Some(status) = record.status {
            *self.by_status.entry(status).or_default() += 1;
        }
        self.attempts += u64::from(record.attempts);
        self.bytes += record.bytes.unwrap_or(0);
        if record.attempts > 0 {
            self.latency.saturating_record((record.elapsed_ms * 1000.0).round().max(1.0) as u64);
        }
    }

    /// Counts a paginated walk that `--max-pages` ended with pages left.
    pub fn walk_cut(&mut self) {
        self.walks_cut += 1;
    }

    /// Records that failed so far.
    pub fn failed(&self) -> u64 {
        self.total - self.ok
    }

    /// The summary of a run that took `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        let secs = elapsed.as_secs_f64();
        Summary {
            total: self.total,
            ok: self.ok,
            failed: self.failed(),
            failures: self.by_kind.iter().map(|(k, n)| (k.as_str().to_owned(), *n)).collect(),
            statuses: self.by_status.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            retries: self.attempts.saturating_sub(self.latency.len()),
            bytes: self.bytes,
            walks_cut: self.walks_cut,
            cancelled: 0,
            elapsed_s: secs,
            requests_per_s: if secs > 0.0 { self.total as f64 / secs } else { 0.0 },
            latency_ms: (!self.latency.is_empty()).then(|| Latency {
                p50: ms(0.50),
                p90: ms(0.90),
                p99: ms(0.99),
                max: self.latency.max() as f64 / 1000.0,
                mean: self.latency.mean() / 1000.0,
            }),
        }
    }
}

/// The end-of-run summary (`--summary-json` writes it as JSON).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Records written.
    pub total: u64,
    /// Successful ones.
    pub ok: u64,
    /// Failed ones.
    pub failed: u64,
    /// Failures by error kind.
    pub failures: BTreeMap<String, u64>,
    /// Final statuses and how often each came.
    pub statuses: BTreeMap<String, u64>,
    /// Attempts beyond the first, over all requests.
    pub retries: u64,
    /// Body bytes received, decoded.
    pub bytes: u64,
    /// Paginated walks that `--max-pages` ended with pages left: the output lacks their rest,
    /// which a resume with a larger `--max-pages` fetches. Like a failure, it makes the exit code 1.
    pub walks_cut: u64,
    /// Requests a stop (SIGINT, SIGTERM) cancelled before they ended: they have no record, and a
    /// resume fetches them. Set by the run, which knows what it handed to the engine.
    pub cancelled: u64,
    /// Wall time of the run, in seconds.
    pub elapsed_s: f64,
    /// Records per second of wall time.
    pub requests_per_s: f64,
    /// Latency of the requests that were sent, retries and backoff included.
    pub latency_ms: Option<Latency>,
}

/// Latency quantiles, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} in {:.2}s ({:.0}/s): {} ok, {} failed, {}, {} received",
            plural(self.total, "request", "requests"),
            self.elapsed_s,
            self.requests_per_s,
            self.ok,
            self.failed,
            plural(self.retries, "retry", "retries"),
            human_bytes(self.bytes)
        )?;
        if self.cancelled > 0 {
            let (requests, them) = match self.cancelled {
                1 => ("1 request was stopped before it ended".to_owned(), "it"),
                n => (format!("{n} requests were stopped before they ended"), "them"),
            };
            writeln!(f, "  cancelled: {requests}, without a record; --resume fetches {them}")?;
        }
        if !self.failures.is_empty() {
            // Count first, then what: "http_status 502" read as a status code.
            let parts: Vec<String> = self.failures.iter().map(|(k, n)| format!("{n} × {k}")).collect();
            writeln!(f, "  failures: {}", parts.join(", "))?;
        }
        if self.walks_cut > 0 {
            writeln!(
                f,
                "  cut: {} stopped at --max-pages with pages left; --resume with a larger --max-pages \
                 goes on from there",
                plural(self.walks_cut, "paginated walk", "paginated walks")
            )?;
        }
        if !self.statuses.is_empty() {
            // As failures: the count, then the status.
            let parts: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{n} × {s}")).collect();
            writeln!(f, "  statuses: {}", parts.join(", "))?;
        }
        if let Some(l) = &self.latency_ms {
            writeln!(
                f,
                "  latency:  p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                l.p50, l.p90, l.p99, l.max
            )?;
        }
        Ok(())
    }
}

/// `1 request`, `2 requests`: a count and its noun, which agree.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(total: u64, retries: u64, walks_cut: u64) -> Summary {
        let mut stats = Stats::default();
        for _ in 0..walks_cut {
            stats.walk_cut();
        }
        Summary { total, ok: total, retries, ..stats.summary(Duration::from_secs(1)) }
    }

    #[test]
    fn counts_of_one_read_in_the_singular() {
        let one = summary(1, 1, 1).to_string();
        assert!(one.starts_with("1 request in 1.00s (0/s): 1 ok, 0 failed, 1 retry, 0 B received"), "{one}");
        assert!(one.contains("cut: 1 paginated walk stopped"), "{one}");
        let two = summary(2, 2, 2).to_string();
        assert!(two.starts_with("2 requests in") && two.contains(", 2 retries,"), "{two}");
        assert!(two.contains("cut: 2 paginated walks stopped"), "{two}");
        assert!(!two.contains("cancelled"), "nothing was stopped");
    }

    #[test]
    fn failures_and_statuses_read_as_a_count_times_what() {
        let mut summary = summary(600, 0, 0);
        summary.failures = [("http_status".to_owned(), 502), ("timeout".to_owned(), 3)].into();
        summary.statuses = [("200".to_owned(), 95), ("503".to_owned(), 502)].into();
        let text = summary.to_string();
        assert!(text.contains("\n  failures: 502 × http_status, 3 × timeout\n"), "{text}");
        assert!(text.contains("\n  statuses: 95 × 200, 502 × 503\n"), "{text}");
    }

    #[test]
    fn a_stopped_run_says_how_many_it_cancelled() {
        let stopped = Summary { cancelled: 1, ..summary(0, 0, 0) }.to_string();
        assert!(stopped.contains("cancelled: 1 request was stopped before it ended"), "{stopped}");
    }
}
