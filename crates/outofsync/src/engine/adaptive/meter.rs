//! Counts of events in 100 ms buckets over the last 10 s: a host's accepted answers and its
//! sends, read back as a rate over any span from 100 ms to 10 s without keeping one timestamp per
//! event (a host costs the same 800 bytes at 10 or 10,000 requests a second).

use std::time::Duration;

use tokio::time::Instant;

const BUCKET: Duration = Duration::from_millis(100);
const BUCKETS: usize = 100;

/// Events per 100 ms over the last 10 s.
#[derive(Debug)]
pub(super) struct Meter {
    origin: Instant,
    ring: [u32; BUCKETS],
    /// The bucket number (100 ms units since `origin`) of the newest bucket written.
    head: u64,
}

impl Meter {
    pub fn new(origin: Instant) -> Self {
        Self { origin, ring: [0; BUCKETS], head: 0 }
    }

    fn bucket(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.origin).as_millis() / BUCKET.as_millis()) as u64
    }

    /// Moves the ring on to `now`, emptying the buckets that went by.
    fn advance(&mut self, now: Instant) -> u64 {
        let at = self.bucket(now);
        if at > self.head {
            let gone = (at - self.head).min(BUCKETS as u64);
            for k in 1..=gone {
                self.ring[((self.head + k) % BUCKETS as u64) as usize] = 0;
            }
            self.head = at;
        }
        self.head
    }

    /// Counts one event at `now`.
    pub fn add(&mut self, now: Instant) {
        let at = self.advance(now);
        let slot = &mut self.ring[(at % BUCKETS as u64) as usize];
        *slot = slot.saturating_add(1);
    }

    /// Events within the last `span` (rounded to whole buckets, the current one included; at most
    /// 10 s).
    pub fn count(&mut self, now: Instant, span: Duration) -> u32 {
        let at = self.advance(now);
        let n = span.as_millis().div_ceil(BUCKET.as_millis()).clamp(1, BUCKETS as u128) as u64;
        (0..n.min(at + 1)).map(|k| self.ring[((at - k) % BUCKETS as u64) as usize]).sum()
    }

    /// Events per second over the last `span`: the count of the buckets it reaches into, over
    /// the time those buckets cover (the current one only up to `now`), so that a short span is
    /// not read as a whole bucket's worth.
    pub fn rate(&mut self, now: Instant, span: Duration) -> f64 {
        let count = self.count(now, span);
        let n = span.as_millis().div_ceil(BUCKET.as_millis()).clamp(1, BUCKETS as u128) as u32;
        let into_current = now.saturating_duration_since(self.origin).as_nanos() % BUCKET.as_nanos();
        let covered = BUCKET * (n - 1) + Duration::from_nanos(into_current as u64);
        f64::from(count) / covered.as_secs_f64().max(BUCKET.as_secs_f64() / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fall_out_of_the_window_as_time_goes_on() {
        let t = Instant::now();
        let mut meter = Meter::new(t);
        for ms in (0..2000).step_by(10) {
            meter.add(t + Duration::from_millis(ms));
        }
        let now = t + Duration::from_millis(1999);
        assert_eq!(meter.count(now, Duration::from_secs(1)), 100);
        assert_eq!(meter.count(now, Duration::from_secs(10)), 200);
        let rate = meter.rate(now, Duration::from_secs(1));
        assert!((rate - 100.0).abs() < 1.0, "{rate}");
        let rate = meter.rate(now, Duration::from_millis(200));
        assert!((rate - 100.0).abs() < 1.0, "a short span is read over what it covers: {rate}");
        // 20 s later everything has gone, and the ring wrapped without a trace.
        assert_eq!(meter.count(now + Duration::from_secs(20), Duration::from_secs(10)), 0);
        meter.add(now + Duration::from_secs(20));
        assert_eq!(meter.count(now + Duration::from_secs(20), Duration::from_secs(10)), 1);
    }
}
