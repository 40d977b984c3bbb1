//! Limits held outside this process: [`FleetLimits`], which a fleet of workers shares (through
//! Redis in `outofsync-queue`), and [`SharedLimits`], the handle a [`Config`](super::Config)
//! carries.
//!
//! The engine's own limits (see the `limits` module) hold for one process. When many processes
//! fetch for one job, "20 requests a second to this host" must hold for all of them together, and
//! a `Retry-After` one of them receives must pause all of them. The engine asks the fleet's limits
//! for a turn to a host after its own host limits and before its global ones (so a request that
//! waits for the fleet holds no global permit that requests to other hosts could use), keeps the
//! lease it gets for as long as the attempt runs, and tells the fleet of every cooldown it starts.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Limits shared with other processes: who may send to a host now, and host cooldowns.
///
/// `origin` is the host's key: scheme, host and port as the URL writes them
/// (`http://127.0.0.1:8080`). Implementations wait out trouble of their own (a store that is
/// down) rather than fail: a turn is always granted in the end, or the request's deadline ends
/// the wait.
pub trait FleetLimits: Send + Sync + 'static {
    /// Waits until this process may send one attempt to `origin`. The returned lease is held
    /// while the attempt runs and dropped right after it (giving back a concurrency slot).
    fn turn<'a>(&'a self, origin: &'a str) -> Pin<Box<dyn Future<Output = FleetTurn> + Send + 'a>>;

    /// `origin` answered with a cooldown (`Retry-After`) that lasts `duration` from now: no
    /// process should send to it before then.
    fn cool_down(&self, origin: &str, duration: Duration);
}

/// A lease granted by [`FleetLimits::turn`]; what it holds is given back when it is dropped.
pub struct FleetTurn(#[allow(dead_code)] Option<Box<dyn Send + Sync>>);

impl FleetTurn {
    /// A turn that holds nothing (a rate cell, spent when granted, needs no giving back).
    pub fn free() -> Self {
        FleetTurn(None)
    }

    /// A turn that holds `lease` until the attempt ends (its `Drop` gives the slot back).
    pub fn holding(lease: impl Send + Sync + 'static) -> Self {
        FleetTurn(Some(Box::new(lease)))
    }
}

impl fmt::Debug for FleetTurn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "FleetTurn(lease)" } else { "FleetTurn(free)" })
    }
}

/// The [`FleetLimits`] of a [`Config`](super::Config) (`Config::shared_limits`). Cheap to clone.
#[derive(Clone)]
pub struct SharedLimits(Arc<dyn FleetLimits>);

impl SharedLimits {
    /// Shares `limits` with the engine.
    pub fn new(limits: impl FleetLimits) -> Self {
        SharedLimits(Arc::new(limits))
    }

    pub(crate) fn get(&self) -> &dyn FleetLimits {
        &*self.0
    }
}

impl fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedLimits(..)")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::time::Instant;
    use url::Url;

    use super::super::config::Config;
    use super::super::limits::Limits;
    use super::*;

    /// A fleet that lets one attempt at a time through and remembers the cooldowns it is told of.
    #[derive(Default)]
    struct OneAtATime {
        held: Arc<AtomicUsize>,
        turns: AtomicUsize,
        cooldowns: Mutex<Vec<(String, Duration)>>,
    }

    struct Lease(Arc<AtomicUsize>);

    impl Drop for Lease {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl FleetLimits for Arc<OneAtATime> {
        fn turn<'a>(&'a self, origin: &'a str) -> Pin<Box<dyn Future<Output = FleetTurn> + Send + 'a>> {
            Box::pin(async move {
                assert_eq!(origin, "http://a.test");
                while self.held.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                self.turns.fetch_add(1, Ordering::SeqCst);
                FleetTurn::holding(Lease(self.held.clone()))
            })
        }

        fn cool_down(&self, origin: &str, duration: Duration) {
            self.cooldowns.lock().unwrap().push((origin.to_owned(), duration));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_fleet_is_asked_for_every_turn_holds_its_lease_and_hears_of_cooldowns() {
        let fleet = Arc::new(OneAtATime::default());
        let config = Config { shared_limits: Some(SharedLimits::new(fleet.clone())), ..Config::default() };
        let limits = Arc::new(Limits::new(&config));
        let host = limits.host(&Url::parse("http://a.test/x").unwrap());
        let first = limits.turn(&host).await;
        assert_eq!(fleet.held.load(Ordering::SeqCst), 1, "the lease is held with the turn");
        let second = {
            let (limits, host) = (limits.clone(), host.clone());
            tokio::spawn(async move { drop(limits.turn(&host).await) })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!second.is_finished(), "the fleet holds the second turn back");
        drop(first);
        second.await.unwrap();
        assert_eq!((fleet.turns.load(Ordering::SeqCst), fleet.held.load(Ordering::SeqCst)), (2, 0));

        host.cool_down(Instant::now() + Duration::from_secs(3));
        // A shorter cooldown than the one in force is not news to the fleet.
        host.cool_down(Instant::now() + Duration::from_secs(1));
        assert_eq!(*fleet.cooldowns.lock().unwrap(), [("http://a.test".to_owned(), Duration::from_secs(3))]);
    }
}
