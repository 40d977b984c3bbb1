//! What `-v` and `-vv` show of the wire: one line per attempt (`info`), and at `debug` the
//! request's and the response's headers, with secrets masked. Emitted through `tracing` under
//! the target `outofsync::wire`, so the subscriber decides what is shown and where.

use std::time::Duration;

use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, SET_COOKIE};

use super::exchange::{Exchanged, Hop, Wire};
use super::failure::Failure;
use crate::record::version_name;

/// Headers whose values are secrets: never shown (nor is any value marked sensitive, as every
/// credential of an [`Auth`](crate::auth::Auth) provider is: a custom API-key header too).
const SECRETS: [http::HeaderName; 4] = [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, SET_COOKIE];

/// Notes one attempt (or hop) of `hop` that ended as `outcome` after `elapsed`, and what follows
/// it (`then`: "retry in 450ms", "done", …).
pub(crate) fn attempt(
    hop: &Hop,
    wire: &Wire,
    outcome: &Result<Exchanged, Failure>,
    elapsed: Duration,
    then: &str,
) {
    if !tracing::enabled!(target: "outofsync::wire", tracing::Level::INFO) {
        return;
    }
    let protocol = wire.version.map_or("-", version_name);
    let connection = match (wire.version, wire.reused) {
        (None, _) => "no connection",
        (Some(_), true) => "reused connection",
        (Some(_), false) => "new connection",
    };
    let ms = elapsed.as_secs_f64() * 1000.0;
    if let Some(resent) = &wire.resent {
        tracing::info!(
            target: "outofsync::wire",
            "{} {} HTTP/{protocol}: the reused connection was closed ({}); sent again on a new one",
            hop.method, hop.url, resent.failure.message
        );
    }
    let result = match outcome {
        Ok(Exchanged::Response(response)) => response.status.to_string(),
        Ok(Exchanged::Redirect { status, location }) => {
            format!("{status} to {}", String::from_utf8_lossy(location.as_bytes()))
        }
        Err(failure) => format!("{}: {}", failure.kind, failure.message),
    };
    tracing::info!(
        target: "outofsync::wire",
        "{} {} HTTP/{protocol} {result} in {ms:.1} ms, {connection}; {then}",
        hop.method, hop.url
    );
    if tracing::enabled!(target: "outofsync::wire", tracing::Level::DEBUG) {
        tracing::debug!(target: "outofsync::wire", "> request headers:{}", listed(&hop.headers));
        if let Ok(Exchanged::Response(response)) = outcome {
            tracing::debug!(target: "outofsync::wire", "< response headers:{}", listed(&response.headers));
        }
    }
}

/// The headers, one per line, secrets masked.
fn listed(headers: &HeaderMap) -> String {
    let mut out = String::new();
    for (name, value) in headers {
        let value = if SECRETS.contains(name) || value.is_sensitive() {
            "(masked)".into()
        } else {
            String::from_utf8_lossy(value.as_bytes())
        };
        out.push_str(&format!("\n    {name}: {value}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_the_rest_shown() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "Bearer hunter2".parse().unwrap());
        headers.insert(COOKIE, "session=s3cret".parse().unwrap());
        headers.insert("x-trace", "1".parse().unwrap());
        let mut key = http::HeaderValue::from_static("k3y");
        key.set_sensitive(true);
        headers.insert("x-api-key", key);
        let text = listed(&headers);
        assert!(!text.contains("hunter2") && !text.contains("s3cret") && !text.contains("k3y"), "{text}");
        assert!(text.contains("x-api-key: (masked)"), "{text}");
        assert!(text.contains("authorization: (masked)") && text.contains("x-trace: 1"), "{text}");
    }
}
