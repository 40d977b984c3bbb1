//! What a host's controllers show: the summary's rows, `--summary-json`'s `hosts`, the progress line.

use serde::Serialize;

/// One host as its controllers see it: a row of the summary, of `--summary-json`'s `hosts`, and
/// of the progress line.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HostReport {
    /// The origin: `scheme://host:port`.
    pub host: String,
    /// The window W (in flight at once), under `--adaptive`.
    pub window: Option<f64>,
    /// Its ceiling: `--per-host`, or `-c`.
    pub window_max: Option<usize>,
    /// The pace R in requests per second, once the host has throttled (or declared a rate).
    pub rate: Option<f64>,
    /// The rate has been measured twice alike: probes are now rare and gentle.
    pub converged: bool,
    /// Requests in flight now.
    pub in_flight: usize,
    /// Attempts answered (or failed) so far.
    pub attempts: u64,
    /// Of which accepted (2xx, 3xx, 4xx other than 408 and 429).
    pub accepted: u64,
    /// Of which answered 429.
    pub throttled: u64,
    /// `throttled` as a share of `attempts`, in percent.
    pub throttled_pct: f64,
    /// Of which overloaded (5xx, timeouts, refused or reset connections).
    pub overloaded: u64,
    /// How often each cause cut W or R.
    pub cuts: Cuts,
    /// The latest interval's median latency, in ms (`--adaptive`).
    pub p50_ms: Option<f64>,
    /// The baseline latency from the probes, in ms (`--adaptive`).
    pub base_ms: Option<f64>,
    /// Accepted answers per second over the last second.
    pub goodput: f64,
    /// The host is paused (a long `Retry-After`, a spent quota) for this many more seconds.
    pub paused_s: Option<f64>,
}

/// Cuts of a host's controllers, by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Cuts {
    /// W stepped down because latency rose over its target.
    pub latency: u64,
    /// W cut for overload or a timeout.
    pub error: u64,
    /// R cut for throttling.
    pub throttle: u64,
    /// The host paused (a `Retry-After` over the pause threshold, or a spent quota).
    pub pause: u64,
}

impl HostReport {
    /// Whether there is anything to say about the host beyond its counts: it was throttled,
    /// paused or paced, or its window moved.
    pub fn is_notable(&self) -> bool {
        self.window.is_some() || self.rate.is_some() || self.throttled > 0 || self.cuts.pause > 0
    }

    /// The host in one short line, as the progress line shows it:
    /// `http://api.x.io  w 24/256  r 48.6/s  429 0.3%  p50 120ms (base 80ms)  converged`.
    pub fn brief(&self) -> String {
        let mut line = self.host.clone();
        if let Some(w) = self.window {
            line += &format!("  w {w:.0}/{}", self.window_max.unwrap_or(0));
        }
        if let Some(r) = self.rate {
            line += &format!("  r {r:.1}/s");
        }
        if self.throttled > 0 {
            line += &format!("  429 {:.1}%", self.throttled_pct);
        }
        if let Some(p50) = self.p50_ms {
            line += &format!("  p50 {p50:.0}ms");
            if let Some(base) = self.base_ms {
                line += &format!(" (base {base:.0}ms)");
            }
        }
        if self.converged {
            line += "  converged";
        }
        if let Some(s) = self.paused_s {
            line += &format!("  paused {s:.0}s");
        }
        line
    }

    /// The cuts by cause, for the summary: `2 throttle, 1 latency` (empty when none).
    pub fn cut_causes(&self) -> String {
        let Cuts { latency, error, throttle, pause } = self.cuts;
        [(throttle, "throttle"), (pause, "pause"), (latency, "latency"), (error, "error")]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
