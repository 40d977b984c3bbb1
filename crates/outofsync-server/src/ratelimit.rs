//! `GET /ratelimit`: a hidden rate limit, of one of three kinds, keyed so that tests and
//! benchmarks running at once do not share it.
//!
//! `?rps=N&kind=bucket|window|quota&burst=B&window=S&ra=1&ms=M&key=K&schedule=T:F,…&headers=none|ietf|draft|x`
//!
//! - `bucket` (the default): a token bucket of `rps` a second holding `burst` tokens (default:
//!   `rps`, at least 1). Over it, 429 with `Retry-After` in whole seconds (at least 1).
//! - `window`: a fixed window of `window` seconds (default 1) allowing `rps × window` requests;
//!   over it, 429 with `Retry-After` to the window's end.
//! - `quota`: the same with a window of 60 s by default — a quota spent early and reset late.
//!
//! `ra=0` leaves `Retry-After` out; `ms=M` answers accepted requests after M ms (429s are
//! immediate, as a gateway's are); `schedule` scales the rate (and burst) over time from the key's
//! first request; `headers` states the limit in the IETF draft's `RateLimit-Policy` and `RateLimit`,
//! the older drafts' `RateLimit-Limit/Remaining/Reset`, or `X-RateLimit-*`. Limits with the same
//! key and parameters share their state; the server-side truth is under `/stats?key=K`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use serde_json::json;
use tokio::time::Instant;

use super::reply::{self, Answer, Query, bad_request};
use super::schedule::Schedule;
use super::truth::{Counted, Truth};

/// The most limiters kept; past it, they all start again.
pub const MAX_LIMITERS: usize = 10_000;
/// The longest `ms` of an accepted answer.
pub const MAX_MS: u64 = 60_000;

/// What `kind` a limit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Bucket,
    Window,
}

/// How the limit is stated in headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Headers {
    None,
    Ietf,
    Draft,
    X,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Id {
    key: String,
    kind: Kind,
    rps: u64,
    burst: u64,
    window_ms: u64,
    schedule: String,
}

#[derive(Debug)]
struct Limiter {
    /// The bucket's tokens, or the window's count.
    level: f64,
    /// The bucket's last refill, or the window's start.
    at: Instant,
    started: Instant,
}

/// Every limiter, by key and parameters.
#[derive(Debug, Default)]
pub struct Limiters {
    map: Mutex<HashMap<Id, Limiter>>,
}

/// What a limiter decided for one request.
struct Decision {
    accepted: bool,
    /// Seconds to wait (a 429's `Retry-After`), or until the window resets.
    reset_s: u64,
    limit: u64,
    remaining: u64,
    window_s: u64,
}

/// `GET /ratelimit`; see the module documentation.
pub async fn ratelimit(limiters: &Limiters, truth: &Arc<Truth>, query: &Query<'_>) -> Answer {
    let rps = query.get::<f64>("rps")?.unwrap_or(10.0);
    if !(rps > 0.0 && rps <= 1e6) {
        return Err(bad_request("rps must be within (0, 1000000]"));
    }
    let kind = match query.str("kind").unwrap_or("bucket") {
        "bucket" => Kind::Bucket,
        "window" | "quota" => Kind::Window,
        other => return Err(bad_request(format!("kind {other:?}: use bucket, window or quota"))),
    };
    let default_window = if query.str("kind") == Some("quota") { 60.0 } else { 1.0 };
    let window = query.get::<f64>("window")?.unwrap_or(default_window);
    if !(window > 0.0 && window <= 86_400.0) {
        return Err(bad_request("window must be within (0, 86400] seconds"));
    }
    let burst = query.get::<f64>("burst")?.unwrap_or(rps).max(1.0);
    if burst > 1e7 {
        return Err(bad_request("burst is over the cap of 10000000"));
    }
    let retry_after = query.get::<u8>("ra")?.unwrap_or(1) != 0;
    let ms = reply::capped("ms", query.get::<u64>("ms")?.unwrap_or(0), MAX_MS)?;
    let schedule = Schedule::parse(query.str("schedule"))?;
    let headers = match query.str("headers").unwrap_or("none") {
        "none" => Headers::None,
        "ietf" => Headers::Ietf,
        "draft" => Headers::Draft,
        "x" => Headers::X,
        other => return Err(bad_request(format!("headers {other:?}: use none, ietf, draft or x"))),
    };
    let key = query.str("key").unwrap_or("").to_owned();
    let id = Id {
        key: key.clone(),
        kind,
        rps: rps.to_bits(),
        burst: burst.to_bits(),
        window_ms: (window * 1000.0) as u64,
        schedule: query.str("schedule").unwrap_or("").to_owned(),
    };
    let visit = truth.arrive(&key);
    let now = Instant::now();
    let decision = limiters.decide(id, now, |limiter| {
        let factor = schedule.factor(now.saturating_duration_since(limiter.started).as_secs_f64());
        match kind {
            Kind::Bucket => bucket(limiter, now, rps * factor, (burst * factor).max(1.0)),
            Kind::Window => fixed_window(limiter, now, (rps * window * factor).round().max(1.0), window),
        }
    });
    if !decision.accepted {
        visit.done(Counted::Throttled);
        let mut reply = reply::json(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({ "error": "rate limited", "rps": rps, "retry_after": decision.reset_s }),
        );
        if retry_after {
            reply.headers_mut().insert(RETRY_AFTER, HeaderValue::from(decision.reset_s));
        }
        state_headers(&mut reply, headers, &decision);
        return Ok(reply);
    }
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    visit.done(Counted::Ok);
    let mut reply = reply::json(StatusCode::OK, &json!({ "ok": true, "rps": rps }));
    state_headers(&mut reply, headers, &decision);
    Ok(reply)
}

impl Limiters {
    fn decide(&self, id: Id, now: Instant, f: impl FnOnce(&mut Limiter) -> Decision) -> Decision {
        let mut map = self.map.lock().unwrap();
        if map.len() >= MAX_LIMITERS && !map.contains_key(&id) {
            map.clear();
        }
        let fresh = match id.kind {
            Kind::Bucket => f64::from_bits(id.burst).max(1.0),
            Kind::Window => 0.0,
        };
        let limiter = map.entry(id).or_insert(Limiter { level: fresh, at: now, started: now });
        f(limiter)
    }
}

fn bucket(limiter: &mut Limiter, now: Instant, rate: f64, burst: f64) -> Decision {
    let refill = now.saturating_duration_since(limiter.at).as_secs_f64() * rate;
    limiter.level = (limiter.level + refill).min(burst);
    limiter.at = now;
    let accepted = limiter.level >= 1.0;
    if accepted {
        limiter.level -= 1.0;
    }
    let wait = ((1.0 - limiter.level).max(0.0) / rate).ceil().max(1.0) as u64;
    Decision {
        accepted,
        reset_s: wait,
        limit: burst.round() as u64,
        remaining: limiter.level.floor().max(0.0) as u64,
        window_s: (burst / rate).ceil().max(1.0) as u64,
    }
}

fn fixed_window(limiter: &mut Limiter, now: Instant, limit: f64, window: f64) -> Decision {
    let span = Duration::from_secs_f64(window);
    let elapsed = now.saturating_duration_since(limiter.at);
    if elapsed >= span {
        let windows = (elapsed.as_secs_f64() / window).floor();
        limiter.at += Duration::from_secs_f64(windows * window);
        limiter.level = 0.0;
    }
    let accepted = limiter.level < limit;
    if accepted {
        limiter.level += 1.0;
    }
    let end = limiter.at + span;
    Decision {
        accepted,
        reset_s: end.saturating_duration_since(now).as_secs_f64().ceil().max(1.0) as u64,
        limit: limit as u64,
        remaining: (limit - limiter.level).max(0.0) as u64,
        window_s: window.ceil() as u64,
    }
}

fn state_headers(reply: &mut reply::Reply, headers: Headers, d: &Decision) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            reply.headers_mut().insert(HeaderName::from_static(name), value);
        }
    };
    match headers {
        Headers::None => {}
        Headers::Ietf => {
            set("ratelimit-policy", format!("\"default\";q={};w={}", d.limit, d.window_s));
            set("ratelimit", format!("\"default\";r={};t={}", d.remaining, d.reset_s));
        }
        Headers::Draft => {
            set("ratelimit-limit", d.limit.to_string());
            set("ratelimit-policy", format!("{};w={}", d.limit, d.window_s));
            set("ratelimit-remaining", d.remaining.to_string());
            set("ratelimit-reset", d.reset_s.to_string());
        }
        Headers::X => {
            set("x-ratelimit-limit", d.limit.to_string());
            set("x-ratelimit-remaining", d.remaining.to_string());
            set("x-ratelimit-reset", d.reset_s.to_string());
        }
    }
}
