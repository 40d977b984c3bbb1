//! Finding a host's speed: per host, a *rate* R driven by throttling and, with `--adaptive`, a
//! *window* W driven by latency and overload. A host's controllers see only that host's answers;
//! hosts never share state.
//!
//! - **R** ([`rate`]) is always on, because a host that throttles must be slowed down whatever the
//!   mode: unset until the host first throttles (429, `Retry-After`, a spent quota), then cut once
//!   per congestion epoch to 0.9 × the rate the host accepted, and grown back along a scale-free
//!   CUBIC curve. Requests go out paced at R — which is what ends the herd after a cooldown: every
//!   request held by a pause used to leave in the same instant and meet the next 429; now the
//!   first goes, then the next at R, and R ramps up.
//! - **W** ([`window`]) is on with `--adaptive`: slow start from 4, then a damped step toward the
//!   window where the median latency is 1.5 × a baseline measured by low-load probes; overload cuts
//!   it. The user's `-c`, `--per-host` and `--rate` are ceilings.
//! - A **pause** is kept for what the server asks explicitly: a `Retry-After` over 2 s, or a quota
//!   spent until its reset (`quota`). A shorter `Retry-After` delays only the retry of its request;
//!   pausing the host for it cost 10–17 % of a rate-limited host's throughput in the design's
//!   simulation, for nothing R does not already do.
//!
//! The driver feeds [`HostCtl::observe`] every attempt's answer and timing (see `run.rs`); the
//! limits ask [`HostCtl::admit`] for a place in the pace and the window before each send (see
//! `limits.rs`). Nothing here runs on a timer: state changes when answers come, under the host's
//! own mutex, which is held for a few arithmetic steps and never across an `.await`.

mod gate;
mod knobs;
mod log;
mod meter;
mod rate;
mod report;
mod signal;
mod window;

#[cfg(test)]
mod models;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

pub use knobs::{AdaptiveConfig, AdaptiveMode};
pub use log::ControllerLog;
pub use report::{Cuts, HostReport};
pub(crate) use signal::{Answer, Signal, classify};

use gate::{Pace, PaceSlot, WindowGate, WindowPermit};
use meter::Meter;
use rate::{Accepted, Cut, RateCtl};
use window::{Change, WindowCtl};

/// A host's accepted rate, read over the span since the last cut, is "far below" the pace it was
/// sent at under this share of it: a fixed window's spent tail, or a capacity that fell by a lot.
/// R then falls by at most β² an epoch instead of to the reading. 0.75 slowed the probing of a
/// token bucket that came back (C1C2 in bench/adaptive.sh: 429s after the step up over 1 %).
const FAR_BELOW: f64 = 0.6;

/// What every host's controllers share: the knobs, the ceilings, the log and the clock's origin.
#[derive(Debug)]
pub(crate) struct Shared {
    pub knobs: AdaptiveConfig,
    /// `--adaptive`: W is controlled.
    pub adaptive: bool,
    /// W's ceiling: `--per-host`, or `-c`.
    pub window_ceiling: usize,
    /// R's ceiling: the user's `--rate`, per second.
    pub rate_ceiling: Option<f64>,
    /// The longest pause honoured (`--max-retry-after`).
    pub max_pause: Duration,
    pub log: Option<ControllerLog>,
    pub started: Instant,
}

/// The controllers of one host, and their gates.
#[derive(Debug)]
pub(crate) struct HostCtl {
    origin: Box<str>,
    shared: Arc<Shared>,
    state: Mutex<State>,
    pace: Pace,
    /// R is set: requests wait for the pace (read without the lock on every send).
    paced: AtomicBool,
    window: Option<Arc<WindowGate>>,
    in_flight: AtomicUsize,
    /// Requests past the pace and the window, waiting for the other limits (see [`Elsewhere`]).
    elsewhere: AtomicUsize,
}

/// A request of the host past its pace and window, waiting for the global limit: while some
/// are, the host's window is not what holds it back, and it must not grow (see `window`).
#[derive(Debug)]
pub(crate) struct Elsewhere<'a>(&'a HostCtl);

impl Drop for Elsewhere<'_> {
    fn drop(&mut self) {
        self.0.elsewhere.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
struct State {
    rate: RateCtl,
    window: Option<WindowCtl>,
    accepted: Meter,
    sent: Meter,
    /// Since when the host has been sent to without a pause: what a measured rate can cover.
    sending_since: Option<Instant>,
    /// The current pause-to-pause cycle: when it began, and its accepted answers.
    cycle: (Instant, u64),
    paused_until: Option<Instant>,
    /// The rate last written to the log, and when.
    logged_rate: Option<(f64, Instant)>,
    counts: Counts,
}

#[derive(Debug, Default)]
struct Counts {
    attempts: u64,
    accepted: u64,
    throttled: u64,
    overloaded: u64,
    cuts: Cuts,
}

/// A place in the host's pace and window, before the request goes; see [`HostCtl::admit`].
#[derive(Debug)]
pub(crate) struct Admission<'a> {
    ctl: &'a Arc<HostCtl>,
    slot: Option<PaceSlot<'a>>,
    permit: Option<WindowPermit>,
}

/// A request in flight to a host; dropping it gives its place in the window back.
#[derive(Debug)]
pub(crate) struct Flight {
    ctl: Arc<HostCtl>,
    _permit: Option<WindowPermit>,
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.ctl.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HostCtl {
    pub fn new(origin: &str, shared: Arc<Shared>) -> Self {
        let now = Instant::now();
        let window = shared.adaptive.then(|| WindowCtl::new(now, shared.window_ceiling, &shared.knobs));
        let gate = window.as_ref().map(|w| WindowGate::new(w.target()));
        Self {
            origin: origin.into(),
            state: Mutex::new(State {
                rate: RateCtl::new(shared.rate_ceiling),
                window,
                accepted: Meter::new(now),
                sent: Meter::new(now),
                sending_since: None,
                cycle: (now, 0),
                paused_until: None,
                logged_rate: None,
                counts: Counts::default(),
            }),
            shared,
            pace: Pace::default(),
            paced: AtomicBool::new(false),
            window: gate,
            in_flight: AtomicUsize::new(0),
            elsewhere: AtomicUsize::new(0),
        }
    }

    /// Marks a request as waiting for the other limits until the guard is dropped.
    pub fn waiting_elsewhere(&self) -> Elsewhere<'_> {
        self.elsewhere.fetch_add(1, Ordering::AcqRel);
        Elsewhere(self)
    }

    /// Waits for this host's pace (once it has one) and a place in its window (under
    /// `--adaptive`), in arrival order. Nothing is spent until [`Admission::take`].
    pub async fn admit<'a>(self: &'a Arc<Self>) -> Admission<'a> {
        let slot = if self.paced.load(Ordering::Acquire) {
            Some(self.pace.slot(|now| self.schedule(now)).await)
        } else {
            None
        };
        let permit = match &self.window {
            Some(gate) => Some(gate.acquire().await),
            None => None,
        };
        Admission { ctl: self, slot, permit }
    }

    /// The pace in force at `now`: R (see `State::rate`) and its burst.
    fn schedule(&self, now: Instant) -> gate::Schedule {
        let mut state = self.state.lock().unwrap();
        let r = state.rate(now, &self.shared)?;
        Some(gate::schedule(r, self.shared.knobs.burst))
    }

    /// Tells the controllers how an attempt sent at `sent_at` ended at `now`. Returns the
    /// instant until which the host should pause, if its answer says its quota is spent.
    pub fn observe(&self, sent_at: Instant, now: Instant, answer: Answer<'_>) -> Option<Instant> {
        let signal = classify(answer);
        let quota = match answer {
            Answer::Response { headers, .. } => {
                crate::engine::quota::read(headers, std::time::SystemTime::now())
            }
            _ => None,
        };
        let (pause, lines) = {
            let mut guard = self.state.lock().unwrap();
            let state = &mut *guard;
            let mut events = Vec::new();
            let pause = self.learn(state, sent_at, now, signal, quota, &mut events);
            self.settle(state, now, &mut events);
            (pause, self.lines(state, now, &events))
        };
        self.write(&lines);
        pause
    }

    /// [`HostCtl::observe`] under the host's lock: counts, steps the controllers, notes events.
    fn learn(
        &self,
        state: &mut State,
        sent_at: Instant,
        now: Instant,
        signal: Signal,
        quota: Option<crate::engine::quota::Quota>,
        events: &mut Vec<&'static str>,
    ) -> Option<Instant> {
        let knobs = &self.shared.knobs;
        let mut pause = None;
        state.counts.attempts += 1;
        let latency = now.saturating_duration_since(sent_at);
        // `mode=window` is the plain AIMD window, with no learned rate: the comparison's baseline.
        let learns = knobs.mode == AdaptiveMode::Gradient || !self.shared.adaptive;
        let gap = state.window.as_ref().map_or(Duration::from_millis(200), WindowCtl::epoch_gap);
        match signal {
            Signal::Success => {
                state.counts.accepted += 1;
                state.cycle.1 += 1;
                state.accepted.add(now);
                if let Some(window) = &mut state.window {
                    let in_flight = self.in_flight.load(Ordering::Acquire);
                    let elsewhere = self.elsewhere.load(Ordering::Acquire) > 0;
                    let change = window.success(now, sent_at, latency, (in_flight, elsewhere), knobs);
                    events.extend(change.map(|c| window_event(c, &mut state.counts)));
                }
                if state.rate.tick(now, knobs) {
                    events.push("probe_rate");
                }
            }
            Signal::Throttle { too_many, .. } => {
                state.counts.throttled += u64::from(too_many);
                if let Some(window) = &mut state.window {
                    events.extend(
                        window.throttle(now, sent_at, knobs).map(|c| window_event(c, &mut state.counts)),
                    );
                }
                if learns {
                    state.throttle(now, sent_at, gap, knobs, events);
                }
            }
            Signal::Overload | Signal::Timeout => {
                state.counts.overloaded += 1;
                if let Some(window) = &mut state.window {
                    let timeout = signal == Signal::Timeout;
                    let change = window.overload(now, sent_at, timeout, knobs);
                    events.extend(change.map(|c| window_event(c, &mut state.counts)));
                }
            }
            Signal::Neutral => {
                if let Some(window) = &mut state.window {
                    window.neutral();
                }
            }
        }
        if let Some(quota) = quota {
            state.rate.declare(quota.rate);
            // A spent budget: hold the host until it comes back, if that is long enough to be
            // worth a pause and within what the user allows; a shorter one is a throttle.
            if let Some(wait) = quota.spent_for.filter(|w| *w <= self.shared.max_pause) {
                if wait > knobs.pause {
                    pause = Some(now + wait);
                } else if learns && signal == Signal::Success {
                    state.throttle(now, sent_at, gap, knobs, events);
                }
            }
        }
        if let Some(until) = pause {
            events.extend(self.pause_locked(state, now, until));
        }
        pause
    }

    fn write(&self, lines: &[Line]) {
        if let Some(log) = &self.shared.log {
            for line in lines {
                log.write(&line.event(&self.origin));
            }
        }
    }

    /// The server asked that nothing be sent before `until` (its `Retry-After`). A long wait
    /// pauses the host — true, and the caller holds it — and the host resumes paced; a short one
    /// only delays the request that heard it (R was already cut by [`HostCtl::observe`]).
    pub fn cool_down(&self, now: Instant, until: Instant) -> bool {
        if until.saturating_duration_since(now) <= self.shared.knobs.pause {
            return false;
        }
        let lines = {
            let mut state = self.state.lock().unwrap();
            let mut events: Vec<_> = self.pause_locked(&mut state, now, until).into_iter().collect();
            self.settle(&mut state, now, &mut events);
            self.lines(&mut state, now, &events)
        };
        self.write(&lines);
        true
    }

    fn pause_locked(&self, state: &mut State, now: Instant, until: Instant) -> Option<&'static str> {
        if let Some(paused) = state.paused_until.filter(|p| *p > now) {
            // The answers of requests in flight when the pause began: the same pause, perhaps a
            // little longer.
            if until > paused {
                state.paused_until = Some(until);
                state.rate.extend_pause(until);
                state.cycle.0 = until;
            }
            return None;
        }
        let (cycle_start, accepted) = state.cycle;
        let span = now.saturating_duration_since(cycle_start).as_secs_f64();
        // The accepted rate over the cycle that ends here is the quota's rate: resume at it.
        let rate = Accepted { rate: accepted as f64 / span.max(1.0), certain: span >= 1.0 };
        state.rate.pause(now, until, rate, &self.shared.knobs);
        state.paused_until = Some(until);
        state.cycle = (until, 0);
        state.sending_since = None;
        state.counts.cuts.pause += 1;
        Some("pause")
    }

    /// After a change: the gates follow the controllers.
    fn settle(&self, state: &mut State, now: Instant, events: &mut Vec<&'static str>) {
        if let (Some(window), Some(gate)) = (&state.window, &self.window) {
            gate.resize(window.target());
        }
        let r = state.rate(now, &self.shared);
        if r.is_some() && !self.paced.swap(true, Ordering::AcqRel) && events.is_empty() {
            events.push("declared");
        }
        // R moves along its curve between cuts: logged when it has moved by 5 % and a second
        // has passed, so that a plot of the log shows it without a line per request.
        if let Some(r) = r
            && events.is_empty()
            && state.logged_rate.is_none_or(|(last, at)| {
                (r / last - 1.0).abs() >= 0.05 && now.saturating_duration_since(at) >= Duration::from_secs(1)
            })
            && self.shared.log.is_some()
        {
            events.push("rate");
        }
    }

    fn lines(&self, state: &mut State, now: Instant, events: &[&'static str]) -> Vec<Line> {
        if self.shared.log.is_none() || events.is_empty() {
            return Vec::new();
        }
        let r = state.rate(now, &self.shared);
        if let Some(r) = r
            && !events.is_empty()
        {
            state.logged_rate = Some((r, now));
        }
        events
            .iter()
            .map(|&event| Line {
                t: now.saturating_duration_since(self.shared.started).as_secs_f64(),
                event,
                w: state.window.as_ref().map(WindowCtl::w),
                r,
                inflight: self.in_flight.load(Ordering::Acquire),
                p50_ms: state.window.as_ref().and_then(WindowCtl::p50_ms),
                base_ms: state.window.as_ref().and_then(WindowCtl::base_ms),
                goodput: state.accepted.rate(now, Duration::from_secs(1)),
            })
            .collect()
    }

    /// The host as a report row.
    pub fn report(&self) -> HostReport {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        let counts = &state.counts;
        let throttled_pct =
            if counts.attempts == 0 { 0.0 } else { 100.0 * counts.throttled as f64 / counts.attempts as f64 };
        let (attempts, accepted, throttled, overloaded, cuts) =
            (counts.attempts, counts.accepted, counts.throttled, counts.overloaded, counts.cuts);
        HostReport {
            host: self.origin.to_string(),
            window: state.window.as_ref().map(WindowCtl::w),
            window_max: state.window.as_ref().map(|_| self.shared.window_ceiling),
            rate: state.rate(now, &self.shared),
            converged: state.rate.converged(),
            in_flight: self.in_flight.load(Ordering::Acquire),
            attempts,
            accepted,
            throttled,
            throttled_pct,
            overloaded,
            cuts,
            p50_ms: state.window.as_ref().and_then(WindowCtl::p50_ms),
            base_ms: state.window.as_ref().and_then(WindowCtl::base_ms),
            goodput: state.accepted.rate(now, Duration::from_secs(1)),
            paused_s: state
                .paused_until
                .filter(|until| *until > now)
                .map(|until| until.saturating_duration_since(now).as_secs_f64()),
        }
    }
}

impl State {
    /// A throttle: R is cut, once per epoch.
    fn throttle(
        &mut self,
        now: Instant,
        sent_at: Instant,
        gap: Duration,
        knobs: &AdaptiveConfig,
        events: &mut Vec<&'static str>,
    ) {
        if self.paused_until.is_some_and(|until| until > now) {
            return;
        }
        let was = self.rate.converged();
        let accepted = self.accepted_rate(now, knobs);
        if let Cut::Cut { converged, .. } = self.rate.throttle(now, sent_at, accepted, gap, knobs) {
            self.counts.cuts.throttle += 1;
            events.push("throttle");
            if converged && !was {
                events.push("converged");
            }
        }
    }

    /// R at `now`, capped at twice the recent send rate (never below the last cut's rate).
    fn rate(&mut self, now: Instant, shared: &Shared) -> Option<f64> {
        let r = self.rate.rate(now, &shared.knobs)?;
        let recent = 2.0 * self.sent.rate(now, Duration::from_secs(2));
        let floor = self.rate.floor_after_cut().max(shared.knobs.min_rate);
        Some(r.min(recent.max(floor)))
    }

    /// The rate the host accepted lately: over the last second, or longer (up to 10 s) until at
    /// least 10 answers are counted, so that a slow host's rate is not a count of 2 or 3. It is
    /// *certain* when the host was being sent to over the whole span; otherwise it is the tail of
    /// an opening burst (or of the first requests after a pause), and the rate will search.
    fn accepted_rate(&mut self, now: Instant, knobs: &AdaptiveConfig) -> Accepted {
        let sending =
            self.sending_since.map_or(0.0, |since| now.saturating_duration_since(since).as_secs_f64());
        // Right after a cut, the last second still holds what the host accepted before it — a
        // token bucket's burst being drained, say — and would cut again to a rate the host no
        // longer accepts: the span since that cut says what it accepts now, once it holds enough.
        if let Some(cut) = self.rate.last_cut().filter(|cut| *cut < now) {
            let since = now.saturating_duration_since(cut);
            if since < Duration::from_secs(1)
                && sending >= since.as_secs_f64()
                && self.accepted.count(now, since) >= 10
            {
                let mut rate = self.accepted.rate(now, since);
                // A fixed window's quota is spent early in each window: a span shorter than the
                // window can fall where it accepts nothing, and would halve R at once (A3 of
                // bench/adaptive.sh). A reading far below the pace the host was sent at is taken
                // no lower than β × the last second's; the next epoch reads again.
                let pace = self.rate.rate(now, knobs).unwrap_or(f64::INFINITY);
                if rate < FAR_BELOW * pace {
                    rate = rate.max(knobs.beta_r * self.accepted.rate(now, Duration::from_secs(1)));
                }
                return Accepted { rate, certain: true };
            }
        }
        let mut span = 1.0;
        let mut count = self.accepted.count(now, Duration::from_secs(1));
        if sending >= 1.0 {
            for longer in [2.0, 5.0, 10.0] {
                if count >= 10 || sending < longer {
                    break;
                }
                span = longer;
                count = self.accepted.count(now, Duration::from_secs_f64(longer));
            }
        }
        let rate = if span == 1.0 {
            self.accepted.rate(now, Duration::from_secs(1))
        } else {
            f64::from(count) / span
        };
        Accepted { rate, certain: sending >= span }
    }
}

impl Admission<'_> {
    /// The host became paced while this request waited for other permits, after it had passed
    /// the pace: it must queue for the pace, or every request waiting for a permit when the host
    /// first throttles would go out unpaced (the opening burst all over again).
    pub fn stale(&self) -> bool {
        self.slot.is_none() && self.ctl.paced.load(Ordering::Acquire)
    }

    /// The request goes now: spends the pace's cell and takes the window's place.
    pub fn take(self) -> Flight {
        let Admission { ctl, slot, permit } = self;
        let now = Instant::now();
        {
            let mut state = ctl.state.lock().unwrap();
            state.sent.add(now);
            if state.sending_since.is_none() && state.paused_until.is_none_or(|until| until <= now) {
                state.sending_since = Some(now);
            }
            if let Some(slot) = slot {
                let r = state.rate(now, &ctl.shared);
                slot.take(r.map(|r| gate::schedule(r, ctl.shared.knobs.burst)));
            }
        }
        ctl.in_flight.fetch_add(1, Ordering::AcqRel);
        Flight { ctl: ctl.clone(), _permit: permit }
    }
}

/// Counts a window change by cause and names it for the log.
fn window_event(change: Change, counts: &mut Counts) -> &'static str {
    match change {
        Change::SlowStart => "slowstart",
        Change::Grow => "grow",
        Change::CutLatency => {
            counts.cuts.latency += 1;
            "cut_latency"
        }
        Change::CutError => {
            counts.cuts.error += 1;
            "cut_error"
        }
        Change::ProbeStart => "probe",
        Change::ProbeEnd => "probe_end",
    }
}

/// A log line, gathered under the host's lock and written after.
struct Line {
    t: f64,
    event: &'static str,
    w: Option<f64>,
    r: Option<f64>,
    inflight: usize,
    p50_ms: Option<f64>,
    base_ms: Option<f64>,
    goodput: f64,
}

impl Line {
    fn event<'a>(&self, host: &'a str) -> log::Event<'a> {
        log::Event {
            t: self.t,
            host,
            event: self.event,
            w: self.w,
            r: self.r,
            inflight: self.inflight,
            p50_ms: self.p50_ms,
            base_ms: self.base_ms,
            goodput: self.goodput,
        }
    }
}
