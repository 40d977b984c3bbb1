//! The rate R of one host, driven by throttling (429, `Retry-After`, a spent quota): unset until
//! the host first throttles, cut once per congestion epoch to a share of the rate the host was
//! seen to accept, then grown back along a scale-free CUBIC curve — flat near the rate that was
//! cut, then probing upward.
//!
//! Pure: every method takes the time, so the rules are tested without a clock.

use std::time::Duration;

use tokio::time::Instant;

use super::AdaptiveConfig;

/// The least rate a search starts from: knowing nothing of a host that throttled at once (or
/// that asked for a pause), one request a second, doubling, finds 100/s in under 7 s and
/// costs one 429 at the floor's pace.
const SEARCH_FROM: f64 = 1.0;

/// The rate a host accepted when it throttled, as measured by the host's meter.
#[derive(Clone, Copy, Debug)]
pub(super) struct Accepted {
    /// Accepted answers per second.
    pub rate: f64,
    /// The span it was measured over was all spent sending: a rate, not the tail of a burst.
    pub certain: bool,
}

/// Where the rate is in its life.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Never throttled: no pace of our own.
    Free,
    /// Throttled before the host had been sent to for long enough to measure a rate (an opening
    /// burst, or the first requests after a pause): R doubles every second from `r0` until the
    /// next throttle measures one.
    Search { r0: f64, t0: Instant },
    /// CUBIC recovery: R(t) = w_max·(1 + c·(t − t0 − k)³), c = (1 − β)/k³, which is β·w_max at
    /// `t0`, flat at w_max around `t0 + k`, and convex beyond.
    Recover { w_max: f64, t0: Instant, k: f64, beta: f64 },
}

/// What a throttle did to the rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Cut {
    /// A new epoch: R was cut (to `rate`).
    Cut { rate: f64, converged: bool },
    /// The same epoch as the last cut (or the host is paused): nothing changes.
    SameEpoch,
}

/// The rate controller of one host.
#[derive(Debug)]
pub(super) struct RateCtl {
    phase: Phase,
    /// When the last cut (or pause) was made; attempts sent before it belong to its epoch.
    last_cut: Option<Instant>,
    /// The accepted rate measured at the last certain cut, and when.
    last_measure: Option<(f64, Instant)>,
    converged: bool,
    /// The rate the server declares (`RateLimit-Policy` and the like), per second.
    declared: Option<f64>,
    /// The user's `--rate`, if any, per second: R never goes above it.
    ceiling: Option<f64>,
}

impl RateCtl {
    pub fn new(ceiling: Option<f64>) -> Self {
        Self {
            phase: Phase::Free,
            last_cut: None,
            last_measure: None,
            converged: false,
            declared: None,
            ceiling,
        }
    }

    /// R at `now`, or `None` while the host has never throttled and declares no rate.
    pub fn rate(&self, now: Instant, knobs: &AdaptiveConfig) -> Option<f64> {
        let learned = match self.phase {
            Phase::Free => None,
            Phase::Search { r0, t0 } => {
                let t = now.saturating_duration_since(t0).as_secs_f64();
                Some(r0 * 2f64.powf(t.min(60.0)))
            }
            Phase::Recover { w_max, t0, k, beta } => {
                let t = now.saturating_duration_since(t0).as_secs_f64();
                let c = (1.0 - beta) / k.powi(3);
                Some(w_max * (1.0 + c * (t - k).powi(3)))
            }
        };
        let r = match (learned, self.declared) {
            (Some(r), Some(d)) => Some(r.min(d)),
            (r, d) => r.or(d),
        }?;
        let r = self.ceiling.map_or(r, |c| r.min(c));
        Some(r.max(knobs.min_rate))
    }

    /// Whether an attempt sent at `sent_at` and answered at `now` opens a new epoch: it left
    /// after the last cut, and the last cut is at least `gap` old.
    pub fn new_epoch(&self, sent_at: Instant, now: Instant, gap: Duration) -> bool {
        self.last_cut.is_none_or(|cut| sent_at > cut && now.saturating_duration_since(cut) >= gap)
    }

    /// A throttle answered at `now` to an attempt sent at `sent_at`, when the host was accepting
    /// `accepted`; `gap` is the shortest epoch (max(200 ms, 2·base)).
    pub fn throttle(
        &mut self,
        now: Instant,
        sent_at: Instant,
        accepted: Accepted,
        gap: Duration,
        knobs: &AdaptiveConfig,
    ) -> Cut {
        if !self.new_epoch(sent_at, now, gap) {
            return Cut::SameEpoch;
        }
        self.last_cut = Some(now);
        self.cut_to(now, now, accepted, knobs)
    }

    /// The host asked for a pause until `until` (a long `Retry-After`, or its quota spent): the
    /// pause is one epoch, and the host resumes at `until` paced at β·`accepted` (the rate it
    /// accepted over the cycle that ended in the pause), then recovers.
    pub fn pause(&mut self, now: Instant, until: Instant, accepted: Accepted, knobs: &AdaptiveConfig) -> Cut {
        if self.last_cut.is_some_and(|cut| cut >= until) {
            return Cut::SameEpoch;
        }
        self.last_cut = Some(until);
        self.cut_to(now, until, accepted, knobs)
    }

    fn cut_to(&mut self, now: Instant, t0: Instant, accepted: Accepted, knobs: &AdaptiveConfig) -> Cut {
        let fast_k = knobs.k.as_secs_f64().max(0.001);
        if !accepted.certain {
            let r0 = (knobs.beta_r * accepted.rate).max(SEARCH_FROM).max(knobs.min_rate);
            self.phase = Phase::Search { r0, t0 };
            return Cut::Cut { rate: r0, converged: self.converged };
        }
        let a = accepted.rate.max(knobs.min_rate);
        // Two epochs at least K apart that measure the same rate (±10 %): the rate is found, and
        // the next probes can be rarer and gentler. One that moved by over 20 % starts over.
        let (mut beta, mut k) = (knobs.beta_r, fast_k);
        if let Some((before, at)) = self.last_measure {
            let change = (a / before.max(1e-9) - 1.0).abs();
            let k_now = if self.converged { converged_k(before) } else { fast_k };
            if change <= 0.1 && now.saturating_duration_since(at).as_secs_f64() >= k_now {
                self.converged = true;
            } else if change > 0.2 {
                self.converged = false;
            }
        }
        if self.converged {
            beta = knobs.beta_r.max(0.95);
            k = converged_k(a);
        }
        self.last_measure = Some((a, now));
        self.phase = Phase::Recover { w_max: a, t0, k, beta };
        Cut::Cut { rate: (beta * a).max(knobs.min_rate), converged: self.converged }
    }

    /// A pause already in force was made longer (answers to requests that were in flight when it
    /// began ask for a little more): the same epoch, resuming later.
    pub fn extend_pause(&mut self, until: Instant) {
        self.last_cut = Some(until);
        match &mut self.phase {
            Phase::Search { t0, .. } | Phase::Recover { t0, .. } => *t0 = until,
            Phase::Free => {}
        }
    }

    /// Called now and then (each answer): after a quiet spell of 2·K since the last cut,
    /// capacity has gone up; probing goes back to the fast pace from where R is now.
    ///
    /// Why 2·K and not the design's 3·K: converged, the curve past K mirrors a 5 % cut, so it
    /// grows only ~5 % in the next K; at 3·K a doubled capacity was found ~25 s late, at the edge
    /// of the target. A host whose capacity is unchanged throttles again at ~1.6·K (where R
    /// passes 1.01 × the old rate), so 2·K is still past the usual next throttle.
    pub fn tick(&mut self, now: Instant, knobs: &AdaptiveConfig) -> bool {
        let Phase::Recover { t0, k, .. } = self.phase else { return false };
        if !self.converged || now.saturating_duration_since(t0).as_secs_f64() < 2.0 * k {
            return false;
        }
        let Some(r) = self.rate(now, knobs) else { return false };
        let fast_k = knobs.k.as_secs_f64().max(0.001);
        self.converged = false;
        // At the end of a plateau at the present rate: convex growth from here on.
        let t0 = now.checked_sub(Duration::from_secs_f64(fast_k)).unwrap_or(now);
        self.phase = Phase::Recover { w_max: r, t0, k: fast_k, beta: knobs.beta_r };
        true
    }

    /// The server declares that it allows `rate` requests per second (`None`: it stopped saying).
    pub fn declare(&mut self, rate: Option<f64>) {
        self.declared = rate;
    }

    /// When the last cut (or pause) was made.
    pub fn last_cut(&self) -> Option<Instant> {
        self.last_cut
    }

    pub fn converged(&self) -> bool {
        self.converged
    }

    /// The rate after the last cut: the floor below which the 2×-send-rate cap never pushes R.
    pub fn floor_after_cut(&self) -> f64 {
        match self.phase {
            Phase::Free => 0.0,
            Phase::Search { r0, .. } => r0,
            Phase::Recover { w_max, beta, .. } => beta * w_max,
        }
    }
}

/// The recovery time once converged: at least 150 requests between probes, so that each probe's
/// 429s are ≤ ~1 % of the traffic; between 6 and 60 s.
fn converged_k(rate: f64) -> f64 {
    (150.0 / rate.max(1e-9)).clamp(6.0, 60.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    const SURE: bool = true;

    #[test]
    fn one_cut_per_epoch_then_a_cubic_recovery_past_the_old_rate() {
        let knobs = AdaptiveConfig::default();
        let t = Instant::now();
        let mut r = RateCtl::new(None);
        assert_eq!(r.rate(t, &knobs), None, "no pace before the first throttle");
        let gap = Duration::from_millis(200);
        let accepted = Accepted { rate: 100.0, certain: SURE };
        let first = r.throttle(at(t, 10.0), at(t, 9.99), accepted, gap, &knobs);
        assert_eq!(first, Cut::Cut { rate: 90.0, converged: false });
        // 29 more 429s, all to attempts sent before the cut: the same epoch.
        for n in 1..30 {
            let cut = r.throttle(at(t, 10.0 + n as f64 * 0.001), at(t, 9.995), accepted, gap, &knobs);
            assert_eq!(cut, Cut::SameEpoch);
        }
        // Sent after the cut, but within 200 ms of it: still the same epoch.
        assert_eq!(r.throttle(at(t, 10.1), at(t, 10.05), accepted, gap, &knobs), Cut::SameEpoch);
        let rate = |s| r.rate(at(t, s), &knobs).unwrap();
        assert!((rate(10.0) - 90.0).abs() < 1e-9);
        assert!((rate(12.0) - 100.0).abs() < 1e-9, "flat at the old rate after K = 2 s");
        assert!(rate(11.0) > 90.0 && rate(11.0) < 100.0 && rate(13.0) < 102.0 && rate(16.0) > 120.0);
    }

    #[test]
    fn two_epochs_that_agree_converge_and_a_quiet_spell_goes_back_to_probing_fast() {
        let knobs = AdaptiveConfig::default();
        let t = Instant::now();
        let mut r = RateCtl::new(None);
        let gap = Duration::from_millis(200);
        let a = |rate| Accepted { rate, certain: SURE };
        r.throttle(at(t, 0.0), at(t, 0.0), a(100.0), gap, &knobs);
        assert!(!r.converged());
        let cut = r.throttle(at(t, 3.0), at(t, 2.9), a(104.0), gap, &knobs);
        assert_eq!(cut, Cut::Cut { rate: 0.95 * 104.0, converged: true });
        // Converged: K = 150/104 clamped to 6 s, so R is still below 104 at 3 s after the cut.
        assert!(r.rate(at(t, 6.0), &knobs).unwrap() < 104.0);
        assert!((r.rate(at(t, 9.0), &knobs).unwrap() - 104.0).abs() < 1e-9);
        // A rate that moved by over 20 % starts over with the fast probe.
        let cut = r.throttle(at(t, 20.0), at(t, 19.9), a(60.0), gap, &knobs);
        assert_eq!(cut, Cut::Cut { rate: 54.0, converged: false });
        r.throttle(at(t, 30.0), at(t, 29.9), a(61.0), gap, &knobs);
        assert!(r.converged());
        // 2 K = 12 s without a throttle: capacity went up; the fast probe takes over from here.
        assert!(!r.tick(at(t, 41.0), &knobs));
        assert!(r.tick(at(t, 42.5), &knobs));
        assert!(!r.converged());
        let now = r.rate(at(t, 42.5), &knobs).unwrap();
        assert!(r.rate(at(t, 46.5), &knobs).unwrap() > 1.5 * now);
    }

    #[test]
    fn an_uncertain_measure_searches_by_doubling_and_floors_and_ceilings_hold() {
        let knobs = AdaptiveConfig::default();
        let t = Instant::now();
        let mut r = RateCtl::new(Some(50.0));
        let gap = Duration::from_millis(200);
        r.throttle(t, t, Accepted { rate: 6.0, certain: false }, gap, &knobs);
        let rate = |s| r.rate(at(t, s), &knobs).unwrap();
        assert!((rate(0.0) - 5.4).abs() < 1e-9);
        assert!((rate(2.0) - 21.6).abs() < 1e-9);
        let mut unknown = RateCtl::new(None);
        unknown.throttle(t, t, Accepted { rate: 0.0, certain: false }, gap, &knobs);
        assert_eq!(unknown.rate(t, &knobs), Some(1.0), "a search starts at one a second at least");
        assert_eq!(rate(10.0), 50.0, "never above the user's --rate");
        let mut r = RateCtl::new(None);
        r.throttle(t, t, Accepted { rate: 0.0, certain: SURE }, gap, &knobs);
        for s in [0.0, 1.0, 5.0] {
            assert!(r.rate(at(t, s), &knobs).unwrap() >= knobs.min_rate);
        }
        r.declare(Some(3.0));
        assert!(r.rate(at(t, 1000.0), &knobs).unwrap() <= 3.0, "a declared rate caps R");
    }

    #[test]
    fn a_pause_is_one_epoch_and_the_host_resumes_at_the_quota_rate() {
        let knobs = AdaptiveConfig::default();
        let t = Instant::now();
        let mut r = RateCtl::new(None);
        let until = at(t, 57.0);
        let cut = r.pause(t, until, Accepted { rate: 10.0, certain: SURE }, &knobs);
        assert_eq!(cut, Cut::Cut { rate: 9.0, converged: false });
        // 429s to requests in flight when the pause began are the same epoch.
        let late = r.throttle(
            at(t, 0.01),
            at(t, 0.0),
            Accepted { rate: 0.0, certain: SURE },
            Duration::ZERO,
            &knobs,
        );
        assert_eq!(late, Cut::SameEpoch);
        assert!((r.rate(until, &knobs).unwrap() - 9.0).abs() < 1e-9);
    }
}
