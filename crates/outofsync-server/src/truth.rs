//! `GET /stats?key=K`: the server-side truth of the hidden-capacity endpoints (`/ratelimit` and
//! `/capacity` with `key=K`), per second from the key's first request: answers accepted (2xx),
//! throttled (429) and unavailable (503), the most in flight, and the median latency of the
//! accepted ones. What a benchmark or a test compares a client's view with.
//!
//! Bounded: at most [`MAX_KEYS`] keys (further ones share `"(other)"`), [`MAX_SECONDS`] seconds a
//! key (the oldest are dropped), and [`MAX_SAMPLES`] latencies a second (the first ones).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};

/// The most keys tracked.
pub const MAX_KEYS: usize = 1_000;
/// The most seconds kept per key.
pub const MAX_SECONDS: usize = 3_600;
/// The most latencies kept per second, for its median.
pub const MAX_SAMPLES: usize = 20_000;

/// How an answer is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// 2xx.
    Ok,
    /// 429.
    Throttled,
    /// 503.
    Unavailable,
}

#[derive(Debug, Default)]
struct Second {
    ok: u64,
    throttled: u64,
    unavailable: u64,
    max_in_flight: u64,
    latencies_ms: Vec<f32>,
}

#[derive(Debug)]
struct Key {
    started: Instant,
    in_flight: u64,
    seconds: BTreeMap<u64, Second>,
}

/// The truth of every key.
#[derive(Debug, Default)]
pub struct Truth {
    keys: Mutex<HashMap<String, Key>>,
}

/// One request of a key in flight; [`Visit::done`] counts its answer.
#[derive(Debug)]
pub struct Visit {
    truth: Arc<Truth>,
    key: String,
    arrived: Instant,
    counted: bool,
}

impl Truth {
    fn entry<'a>(keys: &'a mut HashMap<String, Key>, key: &str) -> &'a mut Key {
        let key = if keys.contains_key(key) || keys.len() < MAX_KEYS { key } else { "(other)" };
        keys.entry(key.to_owned()).or_insert_with(|| Key {
            started: Instant::now(),
            in_flight: 0,
            seconds: BTreeMap::new(),
        })
    }

    /// A request of `key` arrives.
    pub fn arrive(self: &Arc<Self>, key: &str) -> Visit {
        let arrived = Instant::now();
        let mut keys = self.keys.lock().unwrap();
        let entry = Self::entry(&mut keys, key);
        entry.in_flight += 1;
        let s = arrived.saturating_duration_since(entry.started).as_secs();
        let in_flight = entry.in_flight;
        let second = entry.seconds.entry(s).or_default();
        second.max_in_flight = second.max_in_flight.max(in_flight);
        while entry.seconds.len() > MAX_SECONDS {
            entry.seconds.pop_first();
        }
        Visit { truth: self.clone(), key: key.to_owned(), arrived, counted: false }
    }

    /// Forgets every key.
    pub fn reset(&self) {
        self.keys.lock().unwrap().clear();
    }

    /// The `/stats?key=K` document.
    pub fn to_json(&self, key: &str) -> Value {
        let keys = self.keys.lock().unwrap();
        let Some(entry) = keys.get(key) else {
            return json!({ "key": key, "since_ms": 0, "in_flight": 0, "seconds": [] });
        };
        let seconds: Vec<Value> = entry
            .seconds
            .iter()
            .map(|(t, s)| {
                let mut latencies = s.latencies_ms.clone();
                let p50 = (!latencies.is_empty()).then(|| {
                    let mid = latencies.len() / 2;
                    f64::from(*latencies.select_nth_unstable_by(mid, f32::total_cmp).1)
                });
                json!({
                    "t": t,
                    "ok": s.ok,
                    "throttled": s.throttled,
                    "unavailable": s.unavailable,
                    "max_in_flight": s.max_in_flight,
                    "p50_ms": p50,
                })
            })
            .collect();
        json!({
            "key": key,
            "since_ms": entry.started.elapsed().as_millis() as u64,
            "in_flight": entry.in_flight,
            "seconds": seconds,
        })
    }
}

impl Visit {
    /// Counts the answer, at the second it is sent.
    pub fn done(mut self, counted: Counted) {
        self.count(Some(counted));
    }

    fn count(&mut self, counted: Option<Counted>) {
        if std::mem::replace(&mut self.counted, true) {
            return;
        }
        let now = Instant::now();
        let mut keys = self.truth.keys.lock().unwrap();
        let entry = Truth::entry(&mut keys, &self.key);
        entry.in_flight = entry.in_flight.saturating_sub(1);
        let Some(counted) = counted else { return };
        let s = now.saturating_duration_since(entry.started).as_secs();
        let second = entry.seconds.entry(s).or_default();
        match counted {
            Counted::Ok => {
                second.ok += 1;
                if second.latencies_ms.len() < MAX_SAMPLES {
                    second
                        .latencies_ms
                        .push((now.saturating_duration_since(self.arrived).as_secs_f64() * 1000.0) as f32);
                }
            }
            Counted::Throttled => second.throttled += 1,
            Counted::Unavailable => second.unavailable += 1,
        }
    }
}

impl Drop for Visit {
    /// A request whose client went away before its answer leaves the in-flight count uncounted.
    fn drop(&mut self) {
        self.count(None);
    }
}
