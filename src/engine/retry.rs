//! When to retry and how long to wait: safe failures only, exponential backoff with full jitter,
//! and `Retry-After` (seconds or an HTTP date) honoured up to a cap.

use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::{HeaderMap, Method};

use super::config::RetryPolicy;
use crate::record::ErrorKind;

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
}
