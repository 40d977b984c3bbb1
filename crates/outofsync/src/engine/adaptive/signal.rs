//! What one attempt says about its host: every attempt is classified on its own, the moment it
//! ends, so its latency never includes a backoff or a wait for a turn.

use std::time::Duration;

use http::HeaderMap;

use crate::engine::exchange::Exchanged;
use crate::engine::failure::Failure;
use crate::engine::retry;
use crate::record::ErrorKind;

/// How an attempt ended, as the driver saw it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Answer<'a> {
    /// A response with this status and these headers.
    Response { status: u16, headers: &'a HeaderMap },
    /// A redirect (the server answered).
    Redirect,
    /// No response: the transport failed with this kind.
    Failed(ErrorKind),
    /// No response within the attempt's time.
    TimedOut,
}

impl<'a> Answer<'a> {
    /// The answer of an exchange that ended (`Ok`) or ran out of time (`Err`).
    pub fn of<E>(sent: &'a Result<Result<Exchanged, Failure>, E>) -> Self {
        match sent {
            Ok(Ok(Exchanged::Response(response))) => {
                Answer::Response { status: response.status.as_u16(), headers: &response.headers }
            }
            Ok(Ok(Exchanged::Redirect { .. })) => Answer::Redirect,
            Ok(Err(failure)) => Answer::Failed(failure.kind),
            Err(_) => Answer::TimedOut,
        }
    }
}

/// What an answer means for the host's controllers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// The server did the work: 2xx, 3xx, and 4xx other than 408 and 429. A latency sample and
    /// one more accepted request.
    Success,
    /// The server asks us to slow down: a 429, or an error status with `Retry-After`. Drives R.
    Throttle {
        /// The status was 429 (counted apart in the summary).
        too_many: bool,
        /// The `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The server is overloaded: 500, 502, 503, 504 or 408 without `Retry-After`, a refused or reset
    /// connection. Drives W, through the 2 % rule.
    Overload,
    /// The attempt timed out: drives W at once.
    Timeout,
    /// Says nothing about load (a TLS or DNS failure, a body too large, a decode error).
    Neutral,
}

/// Classifies an answer.
pub(crate) fn classify(answer: Answer<'_>) -> Signal {
    match answer {
        Answer::Response { status, headers } => {
            let retry_after = (status >= 400).then(|| retry::retry_after(headers)).flatten();
            if status == 429 || retry_after.is_some() {
                Signal::Throttle { too_many: status == 429, retry_after }
            } else if matches!(status, 408 | 500 | 502 | 503 | 504) {
                Signal::Overload
            } else {
                Signal::Success
            }
        }
        Answer::Redirect => Signal::Success,
        Answer::Failed(ErrorKind::Timeout) | Answer::TimedOut => Signal::Timeout,
        Answer::Failed(ErrorKind::Connect | ErrorKind::Io) => Signal::Overload,
        Answer::Failed(_) => Signal::Neutral,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use http::header::RETRY_AFTER;

    #[test]
    fn answers_are_classified_by_what_they_say_about_load() {
        let none = HeaderMap::new();
        let mut later = HeaderMap::new();
        later.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        let response = |status, headers| classify(Answer::Response { status, headers });
        for status in [200, 204, 301, 304, 404, 410] {
            assert_eq!(response(status, &none), Signal::Success, "{status}");
        }
        assert_eq!(response(429, &none), Signal::Throttle { too_many: true, retry_after: None });
        let three = Some(Duration::from_secs(3));
        assert_eq!(response(503, &later), Signal::Throttle { too_many: false, retry_after: three });
        assert_eq!(response(200, &later), Signal::Success, "a Retry-After on a success says nothing");
        for status in [408, 500, 502, 503, 504] {
            assert_eq!(response(status, &none), Signal::Overload, "{status}");
        }
        assert_eq!(classify(Answer::TimedOut), Signal::Timeout);
        assert_eq!(classify(Answer::Failed(ErrorKind::Timeout)), Signal::Timeout);
        assert_eq!(classify(Answer::Failed(ErrorKind::Connect)), Signal::Overload);
        assert_eq!(classify(Answer::Failed(ErrorKind::Tls)), Signal::Neutral);
        assert_eq!(classify(Answer::Redirect), Signal::Success);
    }
}
