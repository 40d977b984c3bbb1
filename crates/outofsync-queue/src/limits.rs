//! [`RedisLimits`]: per-host limits held in Redis for a whole fleet of workers — a rate (GCRA),
//! a number of requests in flight (leases), and `Retry-After` cooldowns — plugged into the
//! engine as its [`FleetLimits`].
//!
//! One Lua script decides a turn (see `scripts::ACQUIRE`), on the server's clock. Within one
//! worker, the requests to a host queue behind one another (a local lock per host), so only the
//! head of the queue asks Redis: a thousand requests waiting for a 20/s host cost a worker 20
//! round trips a second, not a thousand. A concurrency lease expires on its own after the
//! lease time unless renewed, so a worker that dies gives its slots back; a live one renews the
//! leases it holds every third of that time.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outofsync::engine::{FleetLimits, FleetTurn, Rate};
use redis::aio::ConnectionManager;

use crate::keys::Keys;
use crate::scripts;

/// How long a worker waits before asking again for a slot when every one is taken.
const FULL_POLL: Duration = Duration::from_millis(5);

/// The fleet's limits on each host of one job.
pub struct RedisLimits {
    inner: Arc<Inner>,
}

struct Inner {
    con: ConnectionManager,
    keys: Keys,
    /// Microseconds between two turns to a host (0: no rate).
    interval_us: u64,
    /// Requests in flight to a host over the fleet (0: no limit).
    per_host: u64,
    /// How long a concurrency lease lasts unless renewed.
    lease: Duration,
    /// This worker's name, the prefix of its lease ids.
    worker: String,
    next_lease: AtomicU64,
    /// The local queue of each host: only its head asks Redis.
    heads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Leases held now: lease id → the key of its host's leases.
    held: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for RedisLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimits")
            .field("job", &self.inner.keys.job)
            .field("interval_us", &self.inner.interval_us)
            .field("per_host", &self.inner.per_host)
            .finish_non_exhaustive()
    }
}

impl RedisLimits {
    /// Limits of job `keys` for the whole fleet: `rate` and `per_host` per host; `lease` is how
    /// long a worker's concurrency slot outlives it. Starts the task that renews this worker's
    /// leases (so it must be called within a tokio runtime); it ends when the limits are dropped.
    pub fn new(
        con: ConnectionManager,
        keys: Keys,
        rate: Option<Rate>,
        per_host: Option<usize>,
        lease: Duration,
        worker: &str,
    ) -> RedisLimits {
        let inner = Arc::new(Inner {
            con,
            keys,
            interval_us: rate.map_or(0, |r| r.interval().as_micros().max(1) as u64),
            per_host: per_host.map_or(0, |n| n.max(1) as u64),
            lease: lease.max(Duration::from_millis(100)),
            worker: worker.to_owned(),
            next_lease: AtomicU64::new(0),
            heads: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
        });
        if inner.per_host > 0 {
            tokio::spawn(renew_leases(Arc::downgrade(&inner)));
        }
        RedisLimits { inner }
    }
}

impl FleetLimits for RedisLimits {
    fn turn<'a>(&'a self, origin: &'a str) -> Pin<Box<dyn Future<Output = FleetTurn> + Send + 'a>> {
        Box::pin(self.inner.clone().turn(origin))
    }

    fn cool_down(&self, origin: &str, duration: Duration) {
        let [_, _, cool] = self.inner.keys.host(origin);
        let mut con = self.inner.con.clone();
        let micros = duration.as_micros().max(1) as u64;
        // Told once, at once; a cooldown lost to a Redis outage costs other workers a 429 each.
        tokio::spawn(async move {
            let told: redis::RedisResult<i64> =
                scripts::COOL.key(cool).arg(micros).invoke_async(&mut con).await;
            if let Err(e) = told {
                tracing::warn!("cannot share a cooldown through Redis: {e}");
            }
        });
    }
}

impl Inner {
    async fn turn(self: Arc<Self>, origin: &str) -> FleetTurn {
        let head = {
            let mut heads = self.heads.lock().unwrap();
            heads.entry(origin.to_owned()).or_default().clone()
        };
        let _head = head.lock().await;
        let [rate, conc, cool] = self.keys.host(origin);
        let lease = format!("{}:{}", self.worker, self.next_lease.fetch_add(1, Ordering::Relaxed));
        let mut pause = Duration::from_millis(50);
        loop {
            let mut con = self.con.clone();
            let answer: redis::RedisResult<i64> = scripts::ACQUIRE
                .key(&rate)
                .key(&conc)
                .key(&cool)
                .arg(self.interval_us)
                .arg(self.per_host)
                .arg(&lease)
                .arg(self.lease.as_millis() as u64)
                .invoke_async(&mut con)
                .await;
            match answer {
                Ok(0) => break,
                Ok(-1) => tokio::time::sleep(FULL_POLL).await,
                Ok(wait) => tokio::time::sleep(Duration::from_micros(wait.max(1) as u64)).await,
                Err(e) => {
                    // Redis away: wait for it, as everything else in the worker does (the
                    // request's deadline bounds the wait).
                    tracing::warn!("waiting for Redis to take a turn to {origin}: {e}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
        if self.per_host == 0 {
            return FleetTurn::free();
        }
        self.held.lock().unwrap().insert(lease.clone(), conc.clone());
        FleetTurn::holding(Lease { inner: self.clone(), id: lease, key: conc })
    }
}

/// A concurrency slot: given back (in the background) when the attempt ends.
struct Lease {
    inner: Arc<Inner>,
    id: String,
    key: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.inner.held.lock().unwrap().remove(&self.id);
        let (mut con, key, id) =
            (self.inner.con.clone(), std::mem::take(&mut self.key), std::mem::take(&mut self.id));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // Lost with Redis away: the slot then expires after the lease time.
                let _: redis::RedisResult<i64> =
                    redis::cmd("ZREM").arg(key).arg(id).query_async(&mut con).await;
            });
        }
    }
}

/// Renews every lease this worker holds, every third of the lease time, in one round trip.
async fn renew_leases(inner: std::sync::Weak<Inner>) {
    let every = match inner.upgrade() {
        Some(inner) => inner.lease / 3,
        None => return,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else { return };
        let held: Vec<(String, String)> =
            inner.held.lock().unwrap().iter().map(|(id, key)| (id.clone(), key.clone())).collect();
        if held.is_empty() {
            continue;
        }
        let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
        for (id, key) in held {
            by_key.entry(key).or_default().push(id);
        }
        for (key, ids) in by_key {
            let mut invocation = scripts::LEASES.key(key);
            invocation.arg(inner.lease.as_millis() as u64);
            for id in &ids {
                invocation.arg(id);
            }
            let mut con = inner.con.clone();
            if let Err(e) = invocation.invoke_async::<i64>(&mut con).await {
                tracing::warn!("cannot renew host leases in Redis: {e}");
            }
        }
    }
}
