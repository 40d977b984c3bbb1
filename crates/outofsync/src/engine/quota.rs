//! What a server says about its quota in rate-limit headers, read from every response whatever
//! the mode: the IETF draft's `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers
//! -08 and later: `"day";q=1000;w=86400` and `"day";r=12;t=300`), the older drafts' `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` (with `-06`'s `10, 10;w=1` policies and `-07`'s
//! `limit=10, remaining=2, reset=1` dictionary), and the `X-RateLimit-Limit/Remaining/Reset` of
//! GitHub, Twitter and most gateways (whose reset is often a Unix time rather than seconds).
//!
//! Two things are taken from them: a budget that is *spent* (remaining 0) and when it comes back,
//! which pauses the host until then; and a *declared rate* (a quota over a window of at most a
//! minute), which caps the host's learned pace. Longer windows (an hourly or daily quota) are no
//! rate to pace at — a run may spend them as fast as it likes — and only their exhaustion counts.
//! Anything unreadable is ignored: a header is advice, never a reason to fail a request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

/// Windows longer than this are quotas to spend, not rates to pace at.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Reset values at or above this many seconds are Unix times (GitHub's `X-RateLimit-Reset`), not
/// delays: 10⁹ s is 2001, and no server asks to wait 31 years.
const UNIX_TIME: u64 = 1_000_000_000;

/// What one response's rate-limit headers say.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Quota {
    /// The lowest rate the server declares over a window of at most a minute, per second.
    pub rate: Option<f64>,
    /// The fewest requests left in any of its windows.
    pub remaining: Option<u64>,
    /// When that window starts again, from now.
    pub reset: Option<Duration>,
    /// A window is spent (0 left) until this long from now: the longest such wait.
    pub spent_for: Option<Duration>,
}

impl Quota {
    /// Whether the headers said anything at all.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        *self == Quota::default()
    }
}

/// Reads the rate-limit headers of `headers` (`now`: the wall clock, for Unix-time resets).
/// Returns `None` when there are none, which is the common case and costs one pass over the names.
pub fn read(headers: &HeaderMap, now: SystemTime) -> Option<Quota> {
    let mut quota = Quota::default();
    // Remaining and reset of the older, one-number fields, paired up after the pass.
    let (mut remaining, mut reset) = (None, None);
    let mut seen = false;
    for (name, value) in headers {
        let name = name.as_str();
        let Some(field) = name.strip_prefix("x-").unwrap_or(name).strip_prefix("ratelimit") else { continue };
        let Ok(value) = value.to_str() else { continue };
        seen = true;
        match field {
            "-policy" => policies(value, &mut quota),
            "" => current(value, now, &mut quota),
            "-limit" => limit(value, &mut quota),
            "-remaining" => remaining = min(remaining, number(value)),
            "-reset" => reset = reset.or_else(|| number(value).map(|n| seconds(n, now))),
            "-reset-after" => reset = reset.or_else(|| fractional(value)),
            _ => {}
        }
    }
    if !seen {
        return None;
    }
    note_window(&mut quota, remaining, reset);
    Some(quota)
}

/// `RateLimit-Policy`: a list of policies, each a name (draft -08) or the quota itself (-06, -07),
/// with parameters `q` (the quota) and `w` (the window in seconds).
fn policies(value: &str, quota: &mut Quota) {
    for member in split(value, ',') {
        let mut parts = split(member, ';');
        let item = parts.next().unwrap_or("");
        let (mut q, mut w) = (number(item), None);
        for (key, value) in parts.filter_map(|p| p.split_once('=')) {
            match key.trim() {
                "q" => q = number(value),
                "w" => w = number(value),
                _ => {}
            }
        }
        declare(quota, q, w);
    }
}

/// `RateLimit`: draft -08 items (`"name";r=R;t=T`), or -07's dictionary (`limit=L, remaining=R,
/// reset=T`).
fn current(value: &str, now: SystemTime, quota: &mut Quota) {
    let (mut remaining, mut reset) = (None, None);
    for member in split(value, ',') {
        let mut parts = split(member, ';');
        let item = parts.next().unwrap_or("");
        match item.split_once('=') {
            // -07: `limit=10, remaining=2, reset=1`, one field per member.
            Some((key, v)) => match key.trim() {
                "remaining" => remaining = min(remaining, number(v)),
                "reset" => reset = number(v).map(|n| seconds(n, now)),
                _ => {}
            },
            // -08: one policy per member, its counters in parameters.
            None => {
                let (mut r, mut t) = (None, None);
                for (key, v) in parts.filter_map(|p| p.split_once('=')) {
                    match key.trim() {
                        "r" => r = number(v),
                        "t" => t = number(v).map(|n| seconds(n, now)),
                        _ => {}
                    }
                }
                note_window(quota, r, t);
            }
        }
    }
    note_window(quota, remaining, reset);
}

/// `RateLimit-Limit`: a number, and in draft -06 also policies (`10, 10;w=1, 1000;w=3600`).
fn limit(value: &str, quota: &mut Quota) {
    for member in split(value, ',') {
        let mut parts = split(member, ';');
        let q = number(parts.next().unwrap_or(""));
        let w = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim() == "w")
            .and_then(|(_, v)| number(v));
        declare(quota, q, w);
    }
}

/// Notes a policy of `q` requests per `w` seconds: a rate when the window is short.
fn declare(quota: &mut Quota, q: Option<u64>, w: Option<u64>) {
    let (Some(q), Some(w)) = (q, w) else { return };
    if w == 0 || Duration::from_secs(w) > RATE_WINDOW {
        return;
    }
    let rate = q as f64 / w as f64;
    quota.rate = Some(quota.rate.map_or(rate, |r| r.min(rate)));
}

/// Notes one window's counters: the fewest left, and the longest wait for a spent one.
fn note_window(quota: &mut Quota, remaining: Option<u64>, reset: Option<Duration>) {
    if let Some(r) = remaining
        && quota.remaining.is_none_or(|least| r < least)
    {
        quota.remaining = Some(r);
        quota.reset = reset.or(quota.reset);
    }
    if let (Some(0), Some(reset)) = (remaining, reset) {
        quota.spent_for = Some(quota.spent_for.map_or(reset, |s| s.max(reset)));
    }
}

/// A reset value: seconds from now, or a Unix time.
fn seconds(n: u64, now: SystemTime) -> Duration {
    if n >= UNIX_TIME {
        let at = UNIX_EPOCH + Duration::from_secs(n);
        at.duration_since(now).unwrap_or(Duration::ZERO)
    } else {
        Duration::from_secs(n)
    }
}

fn number(s: &str) -> Option<u64> {
    s.trim().trim_matches('"').parse().ok()
}

/// Seconds with a fraction (Discord's `X-RateLimit-Reset-After: 1.25`).
fn fractional(s: &str) -> Option<Duration> {
    let f: f64 = s.trim().parse().ok()?;
    (f.is_finite() && f >= 0.0).then(|| Duration::from_secs_f64(f.min(1e9)))
}

fn min(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Splits on `sep` outside double quotes (a policy name may hold a comma or a semicolon).
fn split(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut start = 0;
    let mut cuts = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                cuts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    cuts.push(&s[start..]);
    cuts.into_iter().map(str::trim).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn quota(fields: &[(&'static str, &str)]) -> Option<Quota> {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        read(&headers, UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    }

    fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    #[test]
    fn no_rate_limit_headers_is_none() {
        assert_eq!(quota(&[("content-type", "application/json"), ("x-request-id", "7")]), None);
    }

    #[test]
    fn the_ietf_draft_fields_give_a_rate_and_a_spent_window() {
        let q = quota(&[
            ("ratelimit-policy", r#""burst";q=100;w=60, "day";q=1000;w=86400"#),
            ("ratelimit", r#""burst";r=0;t=12, "day";r=500;t=3600"#),
        ])
        .unwrap();
        assert_eq!(q.rate, Some(100.0 / 60.0), "the daily window is a quota, not a rate");
        assert_eq!((q.remaining, q.reset, q.spent_for), (Some(0), secs(12), secs(12)));
        let q = quota(&[("ratelimit", r#""a,b";r=5;t=1"#)]).unwrap();
        assert_eq!((q.remaining, q.spent_for, q.rate), (Some(5), None, None), "a quoted comma");
    }

    #[test]
    fn the_older_drafts_and_the_x_fields_are_read_too() {
        let q = quota(&[("ratelimit", "limit=10, remaining=0, reset=2")]).unwrap();
        assert_eq!((q.remaining, q.spent_for), (Some(0), secs(2)));
        let q =
            quota(&[("ratelimit-limit", "10, 10;w=1, 1000;w=3600"), ("ratelimit-remaining", "3")]).unwrap();
        assert_eq!((q.rate, q.remaining, q.spent_for), (Some(10.0), Some(3), None));
        let q = quota(&[
            ("ratelimit-policy", "20;w=1"),
            ("ratelimit-limit", "20"),
            ("ratelimit-remaining", "0"),
            ("ratelimit-reset", "1"),
        ])
        .unwrap();
        assert_eq!((q.rate, q.spent_for), (Some(20.0), secs(1)));
        // GitHub: a Unix time 90 s from now.
        let q = quota(&[
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1700000090"),
        ])
        .unwrap();
        assert_eq!((q.rate, q.spent_for), (None, secs(90)), "a limit without a window is no rate");
        let q = quota(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset-after", "1.5")]).unwrap();
        assert_eq!(q.spent_for, Some(Duration::from_millis(1500)));
        let q = quota(&[("x-ratelimit-remaining", "lots"), ("ratelimit-policy", "q=;w=x")]).unwrap();
        assert!(q.is_empty(), "unreadable values are ignored");
    }
}
