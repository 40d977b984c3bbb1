//! When to retry and how long to wait: safe failures only, exponential backoff with full jitter,
//! and `Retry-After` (seconds or an HTTP date) honoured up to a cap.
//!
//! [`RetryPolicy::decide`] is the whole decision as a pure function of one failed attempt, so the
//! request loop only carries it out (wait, cool the host down, or stop).

use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::{HeaderMap, Method};

use crate::record::ErrorKind;

/// When and how requests are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt. Default: 2.
    pub retries: u32,
    /// The first backoff; it doubles with each retry, with full jitter. Default: 500 ms.
    pub backoff: Duration,
    /// The largest backoff. Default: 30 s.
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; a longer one ends the retries. Default: 60 s.
    pub max_retry_after: Duration,
    /// Retry `POST` and `PATCH` too (they may then take effect twice). Default: off.
    pub non_idempotent: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 2,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            non_idempotent: false,
        }
    }
}

/// Statuses worth another try: the server or something in front of it may answer next time.
pub const RETRYABLE_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];

impl RetryPolicy {
    /// Whether a request with `method` may be sent again at all.
    pub fn allows(&self, method: &Method) -> bool {
        self.non_idempotent || is_idempotent(method)
    }

    /// Whether a failure of this kind may succeed on another try.
    pub fn retryable_error(kind: ErrorKind) -> bool {
        matches!(kind, ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Io)
    }

    /// Whether a response with this status may succeed on another try.
    pub fn retryable_status(status: u16) -> bool {
        RETRYABLE_STATUSES.contains(&status)
    }

    /// The backoff before retry number `retry` (from 1): a uniform draw from
    /// `0..=min(max_backoff, backoff × 2^(retry-1))` ("full jitter").
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .backoff
            .checked_mul(1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX))
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// How an attempt failed, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetryCause {
    /// A response with a status not counted as success, and the wait its `Retry-After` asked for.
    Status { status: u16, retry_after: Option<Duration> },
    /// No complete response.
    Error(ErrorKind),
}

/// What follows a failed attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Send again after this wait; `None` when this attempt was the last.
    pub retry: Option<Duration>,
    /// Hold every request to the host for this long: the server said it is busy.
    pub cool_down: Option<Duration>,
    /// Why the retries ended before they ran out, for the record's message.
    pub note: Option<String>,
}

impl RetryPolicy {
    /// Decides what follows attempt number `attempt` (from 1) of a `method` request that ended as
    /// `failed`, with `left` before the request's deadline.
    ///
    /// A `Retry-After` within `max_retry_after` cools the whole host down whether or not this
    /// request is retried (another request would hear the same answer), and a retry waits at least
    /// that long; a longer one ends the retries, as does a wait that would pass the deadline.
    pub(crate) fn decide(
        &self,
        method: &Method,
        attempt: u32,
        failed: RetryCause,
        left: Duration,
    ) -> Decision {
        let retry_after = match failed {
            RetryCause::Status { status, retry_after } if Self::retryable_status(status) => retry_after,
            RetryCause::Error(kind) if Self::retryable_error(kind) => None,
            _ => return Decision::default(),
        };
        let honoured = retry_after.filter(|wait| *wait <= self.max_retry_after);
        let cool_down = honoured.filter(|wait| !wait.is_zero());
        if attempt > self.retries || !self.allows(method) {
            return Decision { cool_down, ..Decision::default() };
        }
        if let Some(asked) = retry_after.filter(|_| honoured.is_none()) {
            let note = format!(
                "no retry: the server asked to wait {}, over --max-retry-after {}",
                human(asked),
                human(self.max_retry_after)
            );
            return Decision { note: Some(note), ..Decision::default() };
        }
        let wait = self.backoff(attempt).max(honoured.unwrap_or_default());
        if wait >= left {
            let note = format!("no retry: waiting {} would pass the --deadline", human(wait));
            return Decision { cool_down, note: Some(note), ..Decision::default() };
        }
        Decision { retry: Some(wait), cool_down, note: None }
    }
}

/// A duration for a message, to the millisecond.
fn human(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX)))
}

/// `GET`, `HEAD`, `PUT`, `DELETE`, `OPTIONS` and `TRACE` (RFC 9110, 9.2.2).
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// The wait a `Retry-After` header asks for: delay-seconds or an HTTP date (a date in the past is
/// no wait). `None` when absent or unreadable.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn backoff_is_jittered_under_an_exponential_cap() {
        let policy = RetryPolicy {
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(3),
            ..RetryPolicy::default()
        };
        for _ in 0..200 {
            assert!(policy.backoff(1) <= Duration::from_millis(500));
            assert!(policy.backoff(2) <= Duration::from_millis(1000));
            assert!(policy.backoff(3) <= Duration::from_millis(2000));
            assert!(policy.backoff(30) <= Duration::from_secs(3));
        }
        let draws: Vec<_> = (0..50).map(|_| policy.backoff(3)).collect();
        assert!(draws.iter().any(|d| *d != draws[0]), "jitter varies the wait");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(wait > Duration::from_secs(110) && wait <= Duration::from_secs(120), "{wait:?}");
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn only_safe_things_are_retried() {
        let policy = RetryPolicy::default();
        assert!(policy.allows(&Method::GET) && policy.allows(&Method::PUT));
        assert!(!policy.allows(&Method::POST) && !policy.allows(&Method::PATCH));
        assert!(RetryPolicy { non_idempotent: true, ..policy }.allows(&Method::POST));
        assert!(RetryPolicy::retryable_status(503) && !RetryPolicy::retryable_status(404));
        assert!(RetryPolicy::retryable_error(ErrorKind::Timeout));
        assert!(!RetryPolicy::retryable_error(ErrorKind::Tls));
    }

    fn status(status: u16, retry_after: Option<u64>) -> RetryCause {
        RetryCause::Status { status, retry_after: retry_after.map(Duration::from_secs) }
    }

    #[test]
    fn decisions_follow_the_policy() {
        let policy = RetryPolicy { backoff: Duration::from_millis(100), ..RetryPolicy::default() };
        let get = &Method::GET;
        let long = Duration::from_secs(300);
        for failed in [status(404, None), status(501, Some(1)), RetryCause::Error(ErrorKind::Tls)] {
            assert_eq!(policy.decide(get, 1, failed, long), Decision::default(), "{failed:?}");
        }
        for failed in [status(503, None), status(408, None), RetryCause::Error(ErrorKind::Io)] {
            let wait = policy.decide(get, 1, failed, long).retry.expect("retried");
            assert!(wait <= Duration::from_millis(100), "{failed:?}: {wait:?}");
        }
        assert_eq!(policy.decide(get, 3, status(503, None), long), Decision::default(), "retries spent");
        assert_eq!(policy.decide(&Method::POST, 1, status(503, None), long), Decision::default());

        // Retry-After: a floor for the wait, a cooldown for the host even when no retry follows,
        // and over the cap, the end of the retries.
        let seven = Some(Duration::from_secs(7));
        let asked = policy.decide(get, 1, status(429, Some(7)), long);
        assert_eq!((asked.retry, asked.cool_down), (seven, seven));
        let spent = policy.decide(get, 3, status(429, Some(7)), long);
        assert_eq!((spent.retry, spent.cool_down, spent.note), (None, seven, None));
        let post = policy.decide(&Method::POST, 1, status(503, Some(7)), long);
        assert_eq!((post.retry, post.cool_down), (None, seven));
        let over = policy.decide(get, 1, status(429, Some(61)), long);
        assert_eq!((over.retry, over.cool_down), (None, None));
        assert!(over.note.unwrap().contains("over --max-retry-after 1m"));
        assert_eq!(policy.decide(get, 1, status(429, Some(0)), long).cool_down, None);

        let late = policy.decide(get, 1, status(503, Some(7)), Duration::from_secs(7));
        assert_eq!((late.retry, late.cool_down), (None, seven));
        assert!(late.note.unwrap().contains("would pass the --deadline"));
    }
}
