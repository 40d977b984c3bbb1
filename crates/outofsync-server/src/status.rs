//! Endpoints that fail on purpose: `GET /status/{code}`, `GET /flaky/{k}`, `GET /flaky?p=` (and
//! `GET /ratelimit` in its own module).

use std::collections::HashMap;
use std::sync::Mutex;

use http::StatusCode;
use serde_json::json;

use super::body::Body;
use super::reply::{self, Answer, Query, Reply};

/// How many distinct `/flaky/{k}?key=` counters are kept; past it they all start again from zero.
pub const MAX_FLAKY_KEYS: usize = 100_000;

/// The state behind the failing endpoints.
pub struct Failures {
    seen: Mutex<HashMap<(u32, String), u32>>,
    rng: Mutex<fastrand::Rng>,
}

impl Failures {
    /// Fresh state; `/flaky?p=` draws from a generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seen: Mutex::new(HashMap::new()), rng: Mutex::new(fastrand::Rng::with_seed(seed)) }
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
