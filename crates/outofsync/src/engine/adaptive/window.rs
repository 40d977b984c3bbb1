//! The window W of one host — how many of its requests may be in flight — driven by latency and
//! overload (502/503/504, timeouts, refused or reset connections).
//!
//! Completions are gathered into *intervals* (at least max(100 ms, 2·base) long, with at least
//! 16 successes); each interval's median latency (p50) is compared with a *baseline*: the
//! lowest p50 of deliberate low-load probes over the last 120 s. A host starts in slow start
//! (W doubles each interval while p50 ≤ 1.25·base); then each interval takes a damped
//! multiplicative step toward the W at which p50 = (1 + tol)·base. Overload cuts W by β_w once per
//! epoch. A host that does not use its window (app-limited) never grows it.
//!
//! `mode=window` swaps all of that for a plain AIMD window (+1 per interval, ×0.9 on any
//! throttle or overload), the classic design kept for comparison.
//!
//! Pure: every method takes the time.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::{AdaptiveConfig, AdaptiveMode};

/// Successes an interval needs before it may close.
const MIN_SUCCESSES: usize = 16;
/// The shortest interval.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// How long a probe's p50 stays a candidate for the baseline.
const BASE_WINDOW: Duration = Duration::from_secs(120);
/// The first probe, from the host's first answer.
const FIRST_PROBE: Duration = Duration::from_secs(10);
/// Windows up to this size are a probe in themselves.
const PROBE_SIZED: f64 = 8.0;
/// Overload answers an interval needs before they cut W, and their least share of its completions.
const OVERLOADS: u32 = 2;
const OVERLOAD_SHARE: f64 = 0.02;

/// What changed, for the log.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Change {
    /// Slow start doubled W.
    SlowStart,
    /// A step up.
    Grow,
    /// A step down: latency over the target.
    CutLatency,
    /// Overload (or a timeout) cut W.
    CutError,
    /// A probe began: W is capped at a quarter for one interval.
    ProbeStart,
    /// A probe ended: the baseline is updated and W restored.
    ProbeEnd,
}

#[derive(Debug)]
struct Interval {
    start: Instant,
    /// Latencies (ms) of successes sent at or after `since`.
    samples: Vec<f32>,
    completions: u32,
    overloads: u32,
    /// Attempts sent before this belong to an earlier regime (before a cut, or a probe's start).
    since: Instant,
    /// The sum of the requests in flight at each success, and their most: how much of the
    /// window the host used.
    in_flight: u64,
    max_in_flight: usize,
    /// Successes that came while some of the host's requests, past the window, were waiting for
    /// another limit (the global one): the window was not what held the host back.
    elsewhere: u32,
    /// A throttle or overload came in this interval.
    signal: bool,
}

impl Interval {
    fn new(now: Instant) -> Self {
        Self {
            start: now,
            samples: Vec::with_capacity(32),
            completions: 0,
            overloads: 0,
            since: now,
            in_flight: 0,
            max_in_flight: 0,
            elsewhere: 0,
            signal: false,
        }
    }
}

/// The window controller of one host.
#[derive(Debug)]
pub(super) struct WindowCtl {
    w: f64,
    ceiling: f64,
    slow_start: bool,
    /// The baseline p50, in ms, once measured.
    base: Option<f64>,
    probes: VecDeque<(Instant, f64)>,
    interval: Interval,
    next_probe: Option<Instant>,
    /// In a probe: the window to restore after it.
    probing: Option<f64>,
    /// Intervals left after a probe, while the host refills its window: what it sees in flight is
    /// a transient, and W does not grow on it.
    settling: u8,
    last_cut: Option<Instant>,
    /// The latest interval's p50, in ms.
    p50: Option<f64>,
    mode: AdaptiveMode,
}

impl WindowCtl {
    pub fn new(now: Instant, ceiling: usize, knobs: &AdaptiveConfig) -> Self {
        let ceiling = ceiling.max(1) as f64;
        Self {
            w: knobs.init.clamp(1.0, ceiling),
            ceiling,
            slow_start: knobs.mode == AdaptiveMode::Gradient,
            base: None,
            probes: VecDeque::new(),
            interval: Interval::new(now),
            next_probe: None,
            probing: None,
            settling: 0,
            last_cut: None,
            p50: None,
            mode: knobs.mode,
        }
    }

    /// The window in force: ⌊W⌋, or a quarter of it (at least 2) during a probe.
    pub fn target(&self) -> usize {
        let w = match self.probing {
            Some(_) => (self.w / 4.0).max(2.0).min(self.w),
            None => self.w,
        };
        (w.floor() as usize).max(1)
    }

    pub fn w(&self) -> f64 {
        self.w
    }

    pub fn base_ms(&self) -> Option<f64> {
        self.base
    }

    pub fn p50_ms(&self) -> Option<f64> {
        self.p50
    }

    #[cfg(test)]
    pub fn in_slow_start(&self) -> bool {
        self.slow_start
    }

    /// The shortest interval, and the shortest epoch: max(100 ms, 2·base) (at least 200 ms for
    /// an epoch, see `epoch_gap`).
    fn min_interval(&self) -> Duration {
        let twice_base = Duration::from_secs_f64(self.base.unwrap_or(0.0) * 2.0 / 1000.0);
        MIN_INTERVAL.max(twice_base)
    }

    /// The shortest congestion epoch: max(200 ms, 2·base).
    pub fn epoch_gap(&self) -> Duration {
        self.min_interval().max(Duration::from_millis(200))
    }

    fn new_epoch(&self, sent_at: Instant, now: Instant) -> bool {
        self.last_cut
            .is_none_or(|cut| sent_at > cut && now.saturating_duration_since(cut) >= self.epoch_gap())
    }

    /// A success (sent at `sent_at`, answered at `now` after `latency`, with `in_flight` requests
    /// in flight to the host, itself included, and whether some of its requests were waiting for
    /// another limit past the window). Returns what changed.
    pub fn success(
        &mut self,
        now: Instant,
        sent_at: Instant,
        latency: Duration,
        (in_flight, elsewhere): (usize, bool),
        knobs: &AdaptiveConfig,
    ) -> Option<Change> {
        self.interval.completions += 1;
        self.interval.in_flight += in_flight as u64;
        self.interval.max_in_flight = self.interval.max_in_flight.max(in_flight);
        self.interval.elsewhere += u32::from(elsewhere);
        if sent_at >= self.interval.since {
            self.interval.samples.push((latency.as_secs_f64() * 1000.0) as f32);
        }
        if self.next_probe.is_none() {
            self.next_probe = Some(now + jittered(FIRST_PROBE));
        }
        let long_enough = now.saturating_duration_since(self.interval.start) >= self.min_interval();
        if !long_enough || self.interval.samples.len() < MIN_SUCCESSES {
            return None;
        }
        self.close(now, knobs)
    }

    /// A throttle (429, `Retry-After`): it ends slow start; in `mode=window` it also cuts W.
    pub fn throttle(&mut self, now: Instant, sent_at: Instant, knobs: &AdaptiveConfig) -> Option<Change> {
        self.interval.completions += 1;
        self.interval.signal = true;
        self.slow_start = false;
        if self.mode == AdaptiveMode::Window && self.new_epoch(sent_at, now) {
            return Some(self.cut(now, 0.9));
        }
        let _ = knobs;
        None
    }

    /// An overload answer (`timeout`: the attempt timed out, which cuts at once; other overloads
    /// cut once the interval holds at least 2 of them and 2 % of its completions).
    pub fn overload(
        &mut self,
        now: Instant,
        sent_at: Instant,
        timeout: bool,
        knobs: &AdaptiveConfig,
    ) -> Option<Change> {
        self.interval.completions += 1;
        self.interval.signal = true;
        self.slow_start = false;
        if !self.new_epoch(sent_at, now) {
            return None;
        }
        self.interval.overloads += 1;
        let beta = if self.mode == AdaptiveMode::Window { 0.9 } else { knobs.beta_w };
        let enough = self.interval.overloads >= OVERLOADS
            && f64::from(self.interval.overloads) >= OVERLOAD_SHARE * f64::from(self.interval.completions);
        (timeout || enough || self.mode == AdaptiveMode::Window).then(|| self.cut(now, beta))
    }

    /// Any other answer that still says the server is there (a 4xx, say): it counts toward the
    /// interval's completions, so that two overloads among many answers stay under 2 %.
    pub fn neutral(&mut self) {
        self.interval.completions += 1;
    }

    fn cut(&mut self, now: Instant, beta: f64) -> Change {
        if let Some(restore) = self.probing.take() {
            self.w = restore;
        }
        self.w = (self.w * beta).max(1.0);
        self.last_cut = Some(now);
        self.interval = Interval::new(now);
        Change::CutError
    }

    /// Closes the interval: updates the baseline, steps W, starts or ends a probe.
    fn close(&mut self, now: Instant, knobs: &AdaptiveConfig) -> Option<Change> {
        let successes = self.interval.samples.len().max(1);
        let mean_in_flight = self.interval.in_flight as f64 / successes as f64;
        let max_in_flight = self.interval.max_in_flight;
        let held_elsewhere = 10 * self.interval.elsewhere as usize > successes;
        let mut samples = std::mem::take(&mut self.interval.samples);
        let mid = samples.len() / 2;
        let (_, p50, _) = samples.select_nth_unstable_by(mid, f32::total_cmp);
        let p50 = f64::from(*p50).max(0.001);
        let signal = self.interval.signal;
        self.p50 = Some(p50);
        let was_probe = self.probing.is_some() || self.w <= PROBE_SIZED;
        if was_probe && !signal {
            self.probes.push_back((now, p50));
        }
        while self.probes.len() > 1
            && self.probes.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) > BASE_WINDOW)
        {
            self.probes.pop_front();
        }
        self.base = self.probes.iter().map(|(_, p)| *p).reduce(f64::min).or(self.base);
        self.interval = Interval::new(now);
        samples.clear();
        self.interval.samples = samples;

        if let Some(restore) = self.probing.take() {
            self.w = restore;
            self.next_probe = Some(now + jittered(knobs.probe));
            self.settling = 2;
            return Some(Change::ProbeEnd);
        }
        let settling = self.settling > 0;
        self.settling = self.settling.saturating_sub(1);
        // A host that does not fill its window learns nothing about a larger one: below half of
        // it on average, W may only shrink (the Netflix rule), and no step takes W beyond twice
        // the most that was in flight (TCP's cwnd-limited rule), so a window never waits, unused,
        // for a burst. Nor does a host whose requests, past the window, wait for the global limit
        // (at more than a tenth of the answers): more places would only queue more of them there, and take a larger share of the
        // global limit from the other hosts, which would then look app-limited in turn.
        let app_limited = mean_in_flight < self.w / 2.0 || held_elsewhere || settling;
        let used = 2.0 * max_in_flight.max(1) as f64;
        let before = self.w;
        let base = self.base.unwrap_or(p50);
        match self.mode {
            AdaptiveMode::Window => {
                if !signal && !app_limited {
                    self.w = (self.w + 1.0).min(self.ceiling).min(used.max(self.w));
                }
            }
            // Slow start lasts while the window is what holds the host back: once it is not (the
            // global limit, or too few requests), doubling would only be doubling on credit.
            AdaptiveMode::Gradient if self.slow_start && !signal && !app_limited && p50 <= 1.25 * base => {
                self.w = (self.w * 2.0).min(self.ceiling).min(used.max(self.w));
                if self.w > before {
                    return Some(Change::SlowStart);
                }
            }
            AdaptiveMode::Gradient => {
                self.slow_start = false;
                let step = ((1.0 + knobs.tol) * base / p50).powf(knobs.gain).clamp(0.5, 1.25);
                let mut w = (self.w * step).min(used.max(self.w));
                if app_limited {
                    w = w.min(self.w);
                }
                self.w = w.clamp(1.0, self.ceiling);
            }
        }
        // A probe is due: a quarter of the window for one interval, unless the window is small
        // enough to be one already.
        if self.mode == AdaptiveMode::Gradient && self.next_probe.is_some_and(|at| now >= at) {
            if self.w > PROBE_SIZED {
                self.probing = Some(self.w);
                self.interval.since = now;
                return Some(Change::ProbeStart);
            }
            self.next_probe = Some(now + jittered(knobs.probe));
        }
        if (self.w - before).abs() < 1e-9 {
            None
        } else if self.w > before {
            Some(Change::Grow)
        } else {
            Some(Change::CutLatency)
        }
    }

    /// Raises or lowers the ceiling (the global limit can change nothing here, but a probe of
    /// the user's `--per-host` can).
    #[cfg(test)]
    pub fn set_w(&mut self, w: f64) {
        self.w = w.clamp(1.0, self.ceiling);
    }
}

/// `d` ± 15 %, so that hosts started together do not probe together.
fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.85 + 0.3 * fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds `n` successes of `latency` each, `gap` apart, with `inflight` in flight.
    fn feed(
        w: &mut WindowCtl,
        now: &mut Instant,
        n: usize,
        latency: Duration,
        gap: Duration,
        inflight: usize,
    ) -> Vec<Change> {
        let knobs = AdaptiveConfig::default();
        let mut changes = Vec::new();
        for _ in 0..n {
            *now += gap;
            changes.extend(w.success(*now, *now - latency, latency, (inflight, false), &knobs));
        }
        changes
    }

    #[test]
    fn slow_start_doubles_until_latency_rises_then_settles_where_p50_is_one_and_a_half_base() {
        let knobs = AdaptiveConfig::default();
        let mut now = Instant::now();
        let mut w = WindowCtl::new(now, 512, &knobs);
        assert_eq!(w.target(), 4);
        // A queueing server: 8 workers, 50 ms each; latency = 50 ms · max(1, W/8).
        for _ in 0..200 {
            let in_flight = w.target();
            let latency = ms((50.0 * (in_flight as f64 / 8.0).max(1.0)) as u64);
            let rate_gap = latency / in_flight as u32;
            feed(&mut w, &mut now, 16, latency, rate_gap, in_flight);
        }
        assert!(!w.in_slow_start());
        let (wf, base) = (w.w(), w.base_ms().unwrap());
        assert!((base - 50.0).abs() < 1.0, "base {base}");
        assert!((10.0..=14.5).contains(&wf), "W settles near 12 (p50 = 1.5 × base): {wf}");
    }

    #[test]
    fn an_app_limited_host_never_grows_its_window() {
        let knobs = AdaptiveConfig::default();
        let mut now = Instant::now();
        let mut w = WindowCtl::new(now, 512, &knobs);
        for _ in 0..50 {
            feed(&mut w, &mut now, 16, ms(10), ms(10), 1);
        }
        assert!(w.w() <= 4.0, "{}", w.w());
    }

    #[test]
    fn overload_cuts_once_per_epoch_and_needs_two_percent_but_a_timeout_cuts_at_once() {
        let knobs = AdaptiveConfig::default();
        let mut now = Instant::now();
        let mut w = WindowCtl::new(now, 512, &knobs);
        w.set_w(100.0);
        w.slow_start = false;
        feed(&mut w, &mut now, 10, ms(10), ms(1), 100);
        let sent = now;
        assert_eq!(w.overload(now, sent, false, &knobs), None, "one 503 is not enough");
        assert_eq!(w.overload(now, sent, false, &knobs), Some(Change::CutError));
        assert!((w.w() - 80.0).abs() < 1e-9);
        // More 503s to attempts sent before the cut: the same epoch.
        for _ in 0..30 {
            assert_eq!(w.overload(now + ms(1), sent, false, &knobs), None);
        }
        assert!((w.w() - 80.0).abs() < 1e-9);
        now += ms(300);
        assert_eq!(w.overload(now, now - ms(1), true, &knobs), Some(Change::CutError));
        assert!((w.w() - 64.0).abs() < 1e-9);
        for _ in 0..200 {
            w.overload(now, now - ms(1), true, &knobs);
            now += ms(300);
        }
        assert!(w.w() >= 1.0, "the floor holds");
    }

    #[test]
    fn fast_errors_leave_the_baseline_alone_and_a_probe_restores_the_window() {
        let knobs = AdaptiveConfig::default();
        let mut now = Instant::now();
        let mut w = WindowCtl::new(now, 512, &knobs);
        feed(&mut w, &mut now, 32, ms(40), ms(10), 4);
        assert_eq!(w.base_ms(), Some(40.0));
        // Fast 503s (1 ms) are no latency sample.
        for _ in 0..100 {
            now += ms(1);
            w.neutral();
            w.overload(now, now - ms(1), false, &knobs);
        }
        assert_eq!(w.base_ms(), Some(40.0));
        w.set_w(64.0);
        w.slow_start = false;
        // Steady at p50 = 1.5 × base: W holds; a probe starts at 10 s and ends one interval later.
        let mut changes = Vec::new();
        while !changes.contains(&Change::ProbeStart) {
            changes.extend(feed(&mut w, &mut now, 16, ms(60), ms(5), 64));
        }
        assert_eq!(w.target(), 16, "a quarter of the window during the probe");
        while !changes.contains(&Change::ProbeEnd) {
            changes.extend(feed(&mut w, &mut now, 16, ms(60), ms(5), 16));
        }
        assert!((w.w() - 64.0).abs() < 1.0, "restored after the probe: {}", w.w());
        assert_eq!(w.target(), w.w().floor() as usize);
        assert_eq!(w.base_ms(), Some(40.0), "the lowest probe p50 of the last 120 s");
    }
}
