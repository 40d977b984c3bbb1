//! Endpoints that fail on purpose: `GET /status/{code}`, `GET /flaky/{k}`, `GET /flaky?p=`, `GET /ratelimit`.

use std::collections::HashMap;
use std::sync::Mutex;

use http::StatusCode;
use http::header::{HeaderValue, RETRY_AFTER};
use serde_json::json;
use tokio::time::Instant;

use super::body::Body;
use super::reply::{self, Answer, Query, Reply};

/// How many distinct `/flaky/{k}?key=` counters are kept; past it they all start again from zero.
pub const MAX_FLAKY_KEYS: usize = 100_000;

/// The state behind the failing endpoints.
pub struct Failures {
    seen: Mutex<HashMap<(u32, String), u32>>,
    rng: Mutex<fastrand::Rng>,
    buckets: Mutex<HashMap<u64, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Failures {
    /// Fresh state; `/flaky?p=` draws from a generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

/// `GET /status/{code}`: that status, with `{"status": code, "reason": …}`.
pub fn status(code: &str) -> Answer {
    let code = reply::segment::<u16>("status code", code)?;
    let status = StatusCode::from_u16(code)
        .ok()
        .filter(|s| (200..600).contains(&s.as_u16()))
        .ok_or_else(|| reply::bad_request(format!("status code must be within 200..=599, got {code}")))?;
    if matches!(code, 204 | 304) {
        let mut reply = Reply::new(Body::empty());
        *reply.status_mut() = status;
        return Ok(reply);
    }
    Ok(reply::json(status, &json!({ "status": code, "reason": status.canonical_reason() })))
}

fn unavailable(detail: serde_json::Value) -> Reply {
    reply::json(StatusCode::SERVICE_UNAVAILABLE, &detail)
}

/// `GET /flaky/{k}?key=K`: 503 for the first `k` requests with key `K`, then 200.
pub fn flaky_key(failures: &Failures, k: &str, query: &Query) -> Answer {
    let k = reply::segment::<u32>("k", k)?;
    let key = query.str("key").unwrap_or_default().to_owned();
    let attempt = {
        let mut seen = failures.seen.lock().unwrap();
        if seen.len() >= MAX_FLAKY_KEYS && !seen.contains_key(&(k, key.clone())) {
            seen.clear();
        }
        let n = seen.entry((k, key.clone())).or_default();
        *n += 1;
        *n
    };
    let doc = json!({ "key": key, "attempt": attempt, "fail_first": k });
    if attempt <= k { Ok(unavailable(doc)) } else { Ok(reply::json(StatusCode::OK, &doc)) }
}

/// `GET /flaky?p=P`: 503 with probability `P` (from the server's seeded generator), else 200.
pub fn flaky_random(failures: &Failures, query: &Query) -> Answer {
    let p = query.get::<f64>("p")?.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&p) {
        return Err(reply::bad_request("p must be within 0..=1"));
    }
    let fail = failures.rng.lock().unwrap().f64() < p;
    let doc = json!({ "p": p, "failed": fail });
    if fail { Ok(unavailable(doc)) } else { Ok(reply::json(StatusCode::OK, &doc)) }
}

/// `GET /ratelimit?rps=N`: a server-wide token bucket of `N` requests per second (burst `N`, at
/// least 1); over it, `429` with `Retry-After` in whole seconds. Each distinct `N` is its own bucket.
pub fn ratelimit(failures: &Failures, query: &Query) -> Answer {
    let rps = query.get::<f64>("rps")?.unwrap_or(10.0);
    if !(rps > 0.0 && rps <= 1e6) {
        return Err(reply::bad_request("rps must be within (0, 1000000]"));
    }
    let capacity = rps.max(1.0);
    let now = Instant::now();
    let wait_s = {
        let mut buckets = failures.buckets.lock().unwrap();
        let bucket = buckets.entry(rps.to_bits()).or_insert(Bucket { tokens: capacity, at: now });
        let refill = now.duration_since(bucket.at).as_secs_f64() * rps;
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            None
        } else {
            Some(((1.0 - bucket.tokens) / rps).ceil().max(1.0) as u64)
        }
    };
    match wait_s {
        None => Ok(reply::json(StatusCode::OK, &json!({ "ok": true, "rps": rps }))),
        Some(s) => {
            let mut reply = reply::json(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({ "error": "rate limited", "rps": rps, "retry_after": s }),
            );
            reply.headers_mut().insert(RETRY_AFTER, HeaderValue::from(s));
            Ok(reply)
        }
    }
}
