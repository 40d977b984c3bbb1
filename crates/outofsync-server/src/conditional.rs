//! Validators on responses and `304 Not Modified`: `ETag` and `Last-Modified` on the documents
//! that do not change between two requests, `If-None-Match` and `If-Modified-Since` answered as
//! RFC 9110 §13 says (an `If-None-Match` wins over an `If-Modified-Since`; weak comparison).

use std::time::{Duration, SystemTime};

use http::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use http::{HeaderMap, HeaderValue, StatusCode};

use super::body::Body;
use super::reply::{Answer, Reply};

/// The validators of a representation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validators {
    /// The entity tag, quoted (`"json-1"`).
    pub etag: String,
    /// When it last changed, whole seconds since the Unix epoch.
    pub modified: u64,
}

impl Validators {
    /// The validators `etag` (without its quotes) and `modified`.
    pub fn new(etag: impl AsRef<str>, modified: u64) -> Self {
        Self { etag: format!("\"{}\"", etag.as_ref()), modified }
    }

    /// The validators of a document that only its query decides: a tag made of `name` and a
    /// hash of the query (FNV-1a: any bytes make a valid tag).
    pub fn of_query(name: &str, query: Option<&str>, modified: u64) -> Self {
        let hash = query
            .unwrap_or("")
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        Self::new(format!("{name}-{hash:016x}"), modified)
    }

    /// Whether a request with `headers` already holds this representation.
    fn matched_by(&self, headers: &HeaderMap) -> bool {
        if let Some(tags) = headers.get(IF_NONE_MATCH) {
            let tags = tags.to_str().unwrap_or("");
            let own = self.etag.trim_start_matches("W/");
            return tags
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.trim_start_matches("W/") == own);
        }
        let since = headers.get(IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok());
        since.and_then(|v| httpdate::parse_http_date(v).ok()).is_some_and(|since| {
            let since = since.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
            self.modified <= since
        })
    }

    fn stamp(&self, reply: &mut Reply) {
        let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(self.modified);
        if let Ok(etag) = HeaderValue::from_str(&self.etag) {
            reply.headers_mut().insert(ETAG, etag);
        }
        if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
            reply.headers_mut().insert(LAST_MODIFIED, date);
        }
    }
}

/// A `304 Not Modified` (no body) when the request's conditions match `validators`; otherwise the
/// reply `make` builds, with the validators on it. `make` is not called for a 304, so an unchanged
/// document costs no work.
pub fn reply(headers: &HeaderMap, validators: &Validators, make: impl FnOnce() -> Answer) -> Answer {
    let mut reply = if validators.matched_by(headers) {
        let mut reply = Reply::new(Body::empty());
        *reply.status_mut() = StatusCode::NOT_MODIFIED;
        reply
    } else {
        make()?
    };
    if reply.status().is_success() || reply.status() == StatusCode::NOT_MODIFIED {
        validators.stamp(&mut reply);
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&http::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(n, v)| ((*n).clone(), HeaderValue::from_str(v).unwrap())).collect()
    }

    #[test]
    fn an_etag_match_wins_and_a_date_at_or_after_the_change_matches() {
        let v = Validators::new("x-1", 1_000_000);
        assert!(v.matched_by(&headers(&[(&IF_NONE_MATCH, "\"a\", W/\"x-1\"")])));
        assert!(v.matched_by(&headers(&[(&IF_NONE_MATCH, "*")])));
        assert!(!v.matched_by(&headers(&[(&IF_NONE_MATCH, "\"x-2\"")])));
        let at = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
        let before = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(999_999));
        assert!(v.matched_by(&headers(&[(&IF_MODIFIED_SINCE, &at)])));
        assert!(!v.matched_by(&headers(&[(&IF_MODIFIED_SINCE, &before)])));
        // A tag that does not match decides, whatever the date says.
        assert!(!v.matched_by(&headers(&[(&IF_NONE_MATCH, "\"old\""), (&IF_MODIFIED_SINCE, &at)])));
        assert!(!v.matched_by(&HeaderMap::new()));
    }
}
