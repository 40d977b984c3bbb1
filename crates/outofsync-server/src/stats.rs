//! `/stats` and `POST /stats/reset`: what the server has seen, so tests can prove a client's limits.
//!
//! Counters are atomics; the two maps (requests by path, in-flight by `Host`) sit behind plain mutexes
//! that are held for one hash lookup and never across an `.await`, so they cost tens of nanoseconds
//! on the hot path. Both maps are bounded: a client that invents a new path or host per request
//! cannot grow them past [`MAX_KEYS`]; further keys are counted under `"(other)"`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};

/// The most distinct paths or hosts tracked before new ones are folded into `"(other)"`.
pub const MAX_KEYS: usize = 10_000;
/// The most seconds counted one by one (`per_second`) since the last reset: an hour.
pub const MAX_SECONDS: usize = 3600;
const OTHER: &str = "(other)";

/// In-flight counters of one group of requests (the whole server, or one `Host`).
#[derive(Default)]
pub struct Gauge {
    requests: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl Gauge {
    fn enter(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.max_in_flight.fetch_max(now, Ordering::AcqRel);
    }

    fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.max_in_flight.store(self.in_flight.load(Ordering::Acquire), Ordering::Release);
    }

    fn to_json(&self) -> Value {
        json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "in_flight": self.in_flight.load(Ordering::Acquire),
            "max_in_flight": self.max_in_flight.load(Ordering::Acquire),
        })
    }
}

/// Everything `/stats` reports.
pub struct ServerStats {
    started: Mutex<Instant>,
    all: Gauge,
    by_path: Mutex<HashMap<Box<str>, u64>>,
    by_host: Mutex<HashMap<Box<str>, Arc<Gauge>>>,
    /// Requests begun in each whole second since the last reset (the start of the count and the
    /// counts), so that a test can prove a rate limit held in every second, not just on average.
    per_second: Mutex<(Instant, Vec<u64>)>,
}

/// Marks one request as in flight until dropped (it lives in the response body).
pub struct InFlight {
    stats: Arc<ServerStats>,
    host: Arc<Gauge>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.stats.all.leave();
        self.host.leave();
    }
}

impl ServerStats {
    /// Fresh counters.
    pub fn new() -> Self {
        Self {
            started: Mutex::new(Instant::now()),
            all: Gauge::default(),
            by_path: Mutex::new(HashMap::new()),
            by_host: Mutex::new(HashMap::new()),
            per_second: Mutex::new((Instant::now(), Vec::new())),
        }
    }

    /// Counts a request for `path` on `host` and returns the guard that ends it.
    pub fn enter(self: &Arc<Self>, path: &str, host: &str) -> InFlight {
        {
            let mut paths = self.by_path.lock().unwrap();
            if let Some(n) = paths.get_mut(path) {
                *n += 1;
            } else {
                let key = if paths.len() < MAX_KEYS { path } else { OTHER };
                *paths.entry(key.into()).or_default() += 1;
            }
        }
        let gauge = {
            let mut hosts = self.by_host.lock().unwrap();
            match hosts.get(host) {
                Some(g) => g.clone(),
                None => {
                    let key = if hosts.len() < MAX_KEYS { host } else { OTHER };
                    hosts.entry(key.into()).or_default().clone()
                }
            }
        };
        {
            let mut per_second = self.per_second.lock().unwrap();
            let second = per_second.0.elapsed().as_secs() as usize;
            if second < MAX_SECONDS {
                if per_second.1.len() <= second {
                    per_second.1.resize(second + 1, 0);
                }
                per_second.1[second] += 1;
            }
        }
        self.all.enter();
        gauge.enter();
        InFlight { stats: self.clone(), host: gauge }
    }

    /// Starts a new measurement: counts to zero, maxima down to what is in flight right now.
    pub fn reset(&self) {
        *self.started.lock().unwrap() = Instant::now();
        *self.per_second.lock().unwrap() = (Instant::now(), Vec::new());
        self.all.reset();
        self.by_path.lock().unwrap().clear();
        let mut hosts = self.by_host.lock().unwrap();
        // Hosts with requests in flight keep their gauge (their guards still point at it).
        hosts.retain(|_, g| g.in_flight.load(Ordering::Acquire) > 0);
        hosts.values().for_each(|g| g.reset());
    }

    /// The `/stats` document.
    pub fn to_json(&self) -> Value {
        let mut doc = self.all.to_json();
        let since = self.started.lock().unwrap().elapsed();
        let by_path: serde_json::Map<String, Value> =
            self.by_path.lock().unwrap().iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let by_host: serde_json::Map<String, Value> =
            self.by_host.lock().unwrap().iter().map(|(k, g)| (k.to_string(), g.to_json())).collect();
        doc["since_ms"] = json!(since.as_millis() as u64);
        doc["by_path"] = Value::Object(by_path);
        doc["by_host"] = Value::Object(by_host);
        doc["per_second"] = json!(self.per_second.lock().unwrap().1);
        doc
    }
}

impl Default for ServerStats {
    fn default() -> Self {
        Self::new()
    }
}
