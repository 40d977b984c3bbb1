//! [`Metrics`]: live counters of a long run in the Prometheus text format, for `--metrics ADDR`.
//!
//! Every counter is an atomic that the one task consuming records bumps (relaxed: a scrape needs
//! no instant exactness), so keeping metrics costs a few nanoseconds a record and no lock. The
//! latency histogram has fixed buckets, as Prometheus histograms do; the summary's exact
//! percentiles come from [`Stats`](crate::stats::Stats), not from here.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::record::{ErrorKind, Record};

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

/// Counters of records, failures by kind, requests in flight, queue events and latency.
#[derive(Debug, Default)]
pub struct Metrics {
    ok: AtomicU64,
    failed: AtomicU64,
    attempts: AtomicU64,
    by_kind: [AtomicU64; ErrorKind::ALL.len()],
    started: AtomicU64,
    ended: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_micros: AtomicU64,
    /// Queue entries this process took over from workers that stopped (workers only).
    pub reclaims: AtomicU64,
    /// Inputs this process ended as poison: delivered too often without a record (workers only).
    pub poisoned: AtomicU64,
    /// Records this process finished that another worker had already published (workers only).
    pub duplicates: AtomicU64,
}

impl Metrics {
    /// An input was handed to the engine: one more in flight until [`Metrics::ended`].
    pub fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// An input ended (its last record was written or published), or was dropped unfinished.
    pub fn ended(&self) {
        self.ended.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one record.
    pub fn observe(&self, record: &Record) {
        let counter = if record.ok { &self.ok } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        self.attempts.fetch_add(u64::from(record.attempts), Ordering::Relaxed);
        if let Some(kind) = record.error_kind()
            && let Some(n) = ErrorKind::ALL.iter().position(|k| *k == kind)
        {
            self.by_kind[n].fetch_add(1, Ordering::Relaxed);
        }
        if record.attempts > 0 {
            let secs = record.elapsed_ms / 1000.0;
            if let Some(n) = BUCKETS.iter().position(|&le| secs <= le) {
                self.buckets[n].fetch_add(1, Ordering::Relaxed);
            }
            self.latency_count.fetch_add(1, Ordering::Relaxed);
            self.latency_micros.fetch_add((record.elapsed_ms * 1000.0).max(0.0) as u64, Ordering::Relaxed);
        }
    }

    /// Records counted so far (ok, failed).
    pub fn records(&self) -> (u64, u64) {
        (self.ok.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::with_capacity(4096);
        header(&mut out, "records_total", "counter", "Records made (one per input), by outcome.");
        _ = writeln!(out, "outofsync_records_total{{ok=\"true\"}} {}", get(&self.ok));
        _ = writeln!(out, "outofsync_records_total{{ok=\"false\"}} {}", get(&self.failed));
        header(&mut out, "requests_total", "counter", "Requests written to the wire (every attempt).");
        _ = writeln!(out, "outofsync_requests_total {}", get(&self.attempts));
        header(&mut out, "failures_total", "counter", "Failed records, by error kind.");
        for (kind, n) in ErrorKind::ALL.iter().zip(&self.by_kind) {
            _ = writeln!(out, "outofsync_failures_total{{kind=\"{kind}\"}} {}", get(n));
        }
        header(&mut out, "in_flight", "gauge", "Inputs handed to the engine and not yet ended.");
        let in_flight = get(&self.started).saturating_sub(get(&self.ended));
        _ = writeln!(out, "outofsync_in_flight {in_flight}");
        for (name, help, counter) in [
            ("reclaims_total", "Queue entries taken over from workers that stopped.", &self.reclaims),
            ("poisoned_total", "Inputs ended as failures after too many deliveries.", &self.poisoned),
            ("duplicates_total", "Records dropped because another worker published first.", &self.duplicates),
        ] {
            header(&mut out, name, "counter", help);
            _ = writeln!(out, "outofsync_{name} {}", get(counter));
        }
        header(&mut out, "request_duration_seconds", "histogram", "Time from first attempt to record.");
        let mut cumulative = 0;
        for (le, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += get(n);
            _ = writeln!(out, "outofsync_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let count = get(&self.latency_count);
        _ = writeln!(out, "outofsync_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = get(&self.latency_micros) as f64 / 1e6;
        _ = writeln!(out, "outofsync_request_duration_seconds_sum {sum}");
        _ = writeln!(out, "outofsync_request_duration_seconds_count {count}");
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    _ = writeln!(out, "# HELP outofsync_{name} {help}\n# TYPE outofsync_{name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordError;

    #[test]
    fn records_become_counters_by_kind_and_a_cumulative_histogram() {
        let metrics = Metrics::default();
        let ok = Record { ok: true, attempts: 1, elapsed_ms: 3.0, ..Record::default() };
        let failed = Record {
            attempts: 3,
            elapsed_ms: 700.0,
            error: Some(RecordError::new(ErrorKind::Timeout, "slow")),
            ..Record::default()
        };
        metrics.started();
        metrics.started();
        metrics.observe(&ok);
        metrics.observe(&failed);
        metrics.ended();
        let text = metrics.render();
        for line in [
            "outofsync_records_total{ok=\"true\"} 1",
            "outofsync_records_total{ok=\"false\"} 1",
            "outofsync_requests_total 4",
            "outofsync_failures_total{kind=\"timeout\"} 1",
            "outofsync_failures_total{kind=\"dns\"} 0",
            "outofsync_in_flight 1",
            "outofsync_request_duration_seconds_bucket{le=\"0.0025\"} 0",
            "outofsync_request_duration_seconds_bucket{le=\"0.005\"} 1",
            "outofsync_request_duration_seconds_bucket{le=\"1\"} 2",
            "outofsync_request_duration_seconds_bucket{le=\"+Inf\"} 2",
            "outofsync_request_duration_seconds_count 2",
            "# TYPE outofsync_request_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
