//! The two gates a host's controller keeps in front of its requests: the learned *pace* (R) and
//! the *window* (W, in flight at once).
//!
//! The pace is a token bucket filled at R, read afresh while a request waits (at least every
//! 100 ms), because R moves continuously as it recovers — doubling every second while it searches.
//! It holds max(1, 0.1 s·R) tokens: AWS's 1 s·R trips windowed limiters, and a burst of one is late
//! whenever the timer wakes late (at 800/s the interval is below tokio's 1 ms tick). It starts
//! with one token: after a first throttle, or a pause, one request goes, then the next at R.
//! Waiters queue in arrival order on an async mutex, as for `--rate`, and the token is spent only
//! when the request goes ([`PaceSlot::take`]): requests that queued behind a pause or a permit
//! never leave in one burst.
//!
//! The window is a fair semaphore whose size follows W: growing adds permits; shrinking takes
//! back the free ones at once and the others as they come back (a *debt*), so no request in flight
//! is cut short and none more is let in until the host is under its new window.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{MutexGuard, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The learned pace of one host.
#[derive(Debug)]
pub(super) struct Pace {
    bucket: tokio::sync::Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    /// When `tokens` was last brought up to date; `None` before the pace was first used.
    at: Option<Instant>,
}

/// The head of the pace's queue: the next request to go.
#[derive(Debug)]
pub(crate) struct PaceSlot<'a> {
    bucket: MutexGuard<'a, Bucket>,
}

/// The pace in force: R per second, and the most tokens the bucket holds. `None`: not paced.
pub(super) type Schedule = Option<(f64, f64)>;

/// The longest a waiter sleeps before it reads R again.
const REREAD: Duration = Duration::from_millis(100);

impl Default for Pace {
    fn default() -> Self {
        Self { bucket: tokio::sync::Mutex::new(Bucket { tokens: 1.0, at: None }) }
    }
}

impl Bucket {
    fn fill(&mut self, now: Instant, (rate, burst): (f64, f64)) {
        let since = self.at.map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64());
        self.tokens = (self.tokens + since * rate).min(burst.max(1.0));
        self.at = Some(now);
    }
}

impl Pace {
    /// Waits, in arrival order, until the pace lets one more request go; `schedule(now)` gives
    /// the pace in force at each instant.
    pub async fn slot(&self, schedule: impl Fn(Instant) -> Schedule) -> PaceSlot<'_> {
        let mut bucket = self.bucket.lock().await;
        loop {
            let now = Instant::now();
            let Some(pace) = schedule(now) else { break };
            bucket.fill(now, pace);
            if bucket.tokens >= 1.0 {
                break;
            }
            // At least a millisecond (the timer's tick): a wait that rounds to nothing would spin.
            let wait = Duration::from_secs_f64(((1.0 - bucket.tokens) / pace.0.max(1e-6)).min(3600.0));
            tokio::time::sleep(wait.clamp(Duration::from_millis(1), REREAD)).await;
        }
        PaceSlot { bucket }
    }
}

impl PaceSlot<'_> {
    /// Spends the slot's token now, at the pace `schedule` gives.
    pub fn take(mut self, schedule: Schedule) {
        if let Some(pace) = schedule {
            self.bucket.fill(Instant::now(), pace);
            self.bucket.tokens -= 1.0;
        }
    }
}

/// The pace of `rate` per second with a burst of `burst` of it (at least one request).
pub(super) fn schedule(rate: f64, burst: Duration) -> (f64, f64) {
    (rate, (rate * burst.as_secs_f64()).max(1.0))
}

/// A fair semaphore whose size follows W.
#[derive(Debug)]
pub(super) struct WindowGate {
    permits: Arc<Semaphore>,
    /// The window's size, and the permits still to take back as they come home.
    size: Mutex<(usize, usize)>,
}

/// One place in the window; given back when dropped, unless the window has shrunk meanwhile.
#[derive(Debug)]
pub(crate) struct WindowPermit {
    permit: Option<OwnedSemaphorePermit>,
    gate: Arc<WindowGate>,
}

impl WindowGate {
    pub fn new(size: usize) -> Arc<Self> {
        Arc::new(Self { permits: Arc::new(Semaphore::new(size)), size: Mutex::new((size, 0)) })
    }

    /// Waits for a place, in arrival order.
    pub async fn acquire(self: &Arc<Self>) -> WindowPermit {
        let permit = self.permits.clone().acquire_owned().await.expect("never closed");
        WindowPermit { permit: Some(permit), gate: self.clone() }
    }

    /// Sets the window to `size` places.
    pub fn resize(&self, size: usize) {
        let mut guard = self.size.lock().unwrap();
        let (current, debt) = &mut *guard;
        if size > *current {
            let more = size - *current;
            let repaid = more.min(*debt);
            *debt -= repaid;
            self.permits.add_permits(more - repaid);
        } else if size < *current {
            let fewer = *current - size;
            let taken = self.permits.forget_permits(fewer);
            *debt += fewer - taken;
        }
        *current = size;
    }

    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

impl Drop for WindowPermit {
    fn drop(&mut self) {
        let mut guard = self.gate.size.lock().unwrap();
        if guard.1 > 0 {
            guard.1 -= 1;
            if let Some(permit) = self.permit.take() {
                permit.forget();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pace_follows_a_changing_rate_and_spends_tokens_only_when_taken() {
        let pace = Pace::default();
        let start = Instant::now();
        let at_20 = || Some(schedule(20.0, Duration::ZERO));
        for _ in 0..3 {
            pace.slot(|_| at_20()).await.take(at_20());
        }
        assert_eq!(start.elapsed(), Duration::from_millis(100), "one at once, then one every 50 ms");
        // A slot let go untaken spends nothing.
        drop(pace.slot(|_| at_20()).await);
        pace.slot(|_| at_20()).await.take(at_20());
        assert_eq!(start.elapsed(), Duration::from_millis(150));
        // A rate that doubles every second while requests wait is read as it grows.
        let doubling = |now: Instant| {
            let t = now.saturating_duration_since(start).as_secs_f64() - 0.15;
            Some(schedule(0.5 * 2f64.powf(t), Duration::ZERO))
        };
        pace.slot(doubling).await.take(doubling(Instant::now()));
        let waited = start.elapsed() - Duration::from_millis(150);
        // ∫ 0.5·2^t dt = 1 at t = log2(1 + 2 ln 2) ≈ 1.26 s (not the 2 s of the first interval).
        assert!(waited > Duration::from_millis(1100) && waited < Duration::from_millis(1400), "{waited:?}");
        // A burst tolerance lets a few go back to back after a quiet spell.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let bursty = || Some(schedule(100.0, Duration::from_millis(50)));
        let quiet = Instant::now();
        for _ in 0..5 {
            pace.slot(|_| bursty()).await.take(bursty());
        }
        assert_eq!(quiet.elapsed(), Duration::ZERO, "a burst of 0.05 s × 100/s");
        pace.slot(|_| bursty()).await.take(bursty());
        assert_eq!(quiet.elapsed(), Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shrinking_window_takes_places_back_as_they_come_home() {
        let gate = WindowGate::new(4);
        let mut held: Vec<_> = futures_util::future::join_all((0..3).map(|_| gate.acquire())).await;
        assert_eq!(gate.available(), 1);
        gate.resize(2);
        assert_eq!(gate.available(), 0, "the free place is taken back at once");
        drop(held.pop());
        assert_eq!(gate.available(), 0, "the first one home pays the debt");
        gate.resize(5);
        assert_eq!(gate.available(), 3);
    }
}
