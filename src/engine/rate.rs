//! Smooth pacing for `--rate` and `--global-rate`: governor's GCRA on tokio's clock.
//!
//! governor's own waiting uses a timer tokio cannot pause, so we only ask it when the next cell is
//! free and sleep with `tokio::time` ourselves; that keeps every rate test on a paused clock.

use std::ops::Add;
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use super::config::Rate;

/// tokio's (pausable) clock, for governor.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TokioClock;

/// An instant of [`TokioClock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TokioInstant(Instant);

impl Add<Nanos> for TokioInstant {
    type Output = TokioInstant;
    fn add(self, rhs: Nanos) -> TokioInstant {
        TokioInstant(self.0 + Duration::from(rhs))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        TokioInstant(self.0.checked_sub(duration.into()).unwrap_or(self.0))
    }
}

impl Clock for TokioClock {
    type Instant = TokioInstant;
    fn now(&self) -> TokioInstant {
        TokioInstant(Instant::now())
    }
}

/// Lets requests through at a steady rate: one per interval, no bursts.
pub(crate) struct Pacer {
    limiter: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<TokioInstant>>,
}

impl Pacer {
    pub fn new(rate: Rate) -> Self {
        let interval = rate.interval().max(Duration::from_nanos(1));
        let quota = Quota::with_period(interval).expect("a non-zero period");
        Self { limiter: RateLimiter::direct_with_clock(quota, TokioClock) }
    }

    /// Waits for this request's turn.
    pub async fn until_ready(&self) {
        while let Err(not_until) = self.limiter.check() {
            tokio::time::sleep(not_until.wait_time_from(TokioClock.now())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacing_is_one_request_per_interval() {
        let pacer = Pacer::new("20/s".parse().unwrap());
        let start = Instant::now();
        for _ in 0..21 {
            pacer.until_ready().await;
        }
        // The first goes at once, the next 20 one every 50 ms.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
