//! Waiting out a queue server that is away: an operation that failed for a reason that passes
//! (a lost connection, a server restarting) is tried again, with a growing pause, until it works.
//!
//! Workers and collectors are long-running: a Redis restart must cost them a pause, not the job.
//! The connection itself is re-made by redis-rs's `ConnectionManager`; this retries the operation.

use std::future::Future;
use std::time::Duration;

use crate::queue::Result;

/// The first pause after a failure; it doubles up to [`LONGEST`].
const FIRST: Duration = Duration::from_millis(50);
/// The longest pause between two tries.
const LONGEST: Duration = Duration::from_secs(2);

/// Runs `op` until it succeeds or fails for a reason that does not pass. Says on stderr (once per
/// outage) that the queue is away, and when it is back.
///
/// # Errors
/// The first error that waiting cannot cure.
pub async fn patiently<T, F, Fut>(what: &str, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut pause = FIRST;
    let mut failures = 0u32;
    loop {
        match op().await {
            Ok(value) => {
                if failures > 0 {
                    tracing::warn!("the queue is back: {what} succeeded after {failures} failed tries");
                }
                return Ok(value);
            }
            Err(e) if e.is_transient() => {
                if failures == 0 {
                    tracing::warn!("the queue is away ({what}: {e}); trying again until it is back");
                }
                failures += 1;
                tokio::time::sleep(pause.mul_f64(0.5 + fastrand::f64() * 0.5)).await;
                pause = (pause * 2).min(LONGEST);
            }
            Err(e) => return Err(e),
        }
    }
}
