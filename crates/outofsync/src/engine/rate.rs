//! Smooth pacing for `--rate` and `--global-rate`: one request per interval, never a burst.
//!
//! A [`Pacer`] is a virtual schedule (GCRA with a burst of one): it knows the earliest instant the
//! next request may go. Waiters queue in arrival order on an async mutex that holds that instant;
//! only the head of the queue sleeps on the timer, so a thousand paced requests cost one wake-up
//! per interval, not a thousand.
//!
//! The cell is spent only when the request is actually sent ([`Slot::take`]), not when its turn in
//! the queue comes: a request that then waits for a concurrency permit keeps the queue, instead
//! of holding a cell that it would spend later, in one burst with every other such request. (This
//! is why we do not use `governor`: its cells are spent on `check`, and it cannot look ahead
//! without spending one.)

use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

use super::config::Rate;

/// Lets requests through at a steady rate: one per interval, in arrival order.
pub(crate) struct Pacer {
    interval: Duration,
    /// The earliest instant the next request may be sent; `None` before the first.
    next: Mutex<Option<Instant>>,
}

/// The head of a [`Pacer`]'s queue: the next request to go. Others wait while it is held.
pub(crate) struct Slot<'a> {
    next: MutexGuard<'a, Option<Instant>>,
    interval: Duration,
}

impl Pacer {
    pub fn new(rate: Rate) -> Self {
        Self { interval: rate.interval(), next: Mutex::new(None) }
    }

    /// Waits, in arrival order, until the pace lets one more request go.
    ///
    /// The slot is spent by [`Slot::take`] at the moment of sending; dropped untaken, it lets the
    /// next waiter have the same instant.
    pub async fn slot(&self) -> Slot<'_> {
        let next = self.next.lock().await;
        if let Some(at) = *next {
            tokio::time::sleep_until(at).await;
        }
        Slot { next, interval: self.interval }
    }
}

impl Slot<'_> {
    /// Spends the slot now: the next request may go one interval from now.
    pub fn take(mut self) {
        *self.next = Some(Instant::now() + self.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn pacing_is_one_request_per_interval() {
        let pacer = Pacer::new("20/s".parse().unwrap());
        let start = Instant::now();
        for _ in 0..21 {
            pacer.slot().await.take();
        }
        // The first goes at once, the next 20 one every 50 ms.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn an_untaken_slot_is_not_spent_and_waiters_go_in_order() {
        let pacer = Arc::new(Pacer::new("10/s".parse().unwrap()));
        let start = Instant::now();
        pacer.slot().await.take();
        // Waiting for a slot and letting it go spends nothing: the next request may still go at 100 ms.
        drop(pacer.slot().await);
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..5)
            .map(|n| {
                let (pacer, order) = (pacer.clone(), order.clone());
                tokio::spawn(async move {
                    pacer.slot().await.take();
                    order.lock().unwrap().push((n, start.elapsed()));
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        let expected: Vec<_> = (0..5).map(|n| (n, Duration::from_millis(100 * (n as u64 + 1)))).collect();
        assert_eq!(order, expected);
    }
}
