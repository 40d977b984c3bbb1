//! Conditional requests: what a response's validators are (`ETag`, `Last-Modified`), which
//! request they belong to (a [`Key`]), and where they are kept between runs (a [`ValidatorStore`],
//! such as the file of `--validators`).
//!
//! The parts are split by who owns them. The request [machine](super::machine) owns the rules of a
//! request's life: a request sent with validators ([`Request::condition`](super::machine::Request::condition))
//! that gets `304 Not Modified` ends as an ok record with `"not_modified": true` and no body, and
//! the validators to keep come out in [`Finished`](super::machine::Finished). The async driver
//! looks a request's validators up before its first step and hands back the new ones after its
//! last, so a store is the only state; a driver that does neither (the lab's blocking one) sends
//! every request unconditionally, as before.

use std::fmt;

use http::HeaderMap;
use ring::digest::{Context, SHA256};

use super::exchange::Hop;

/// What identifies a request for its validators: 16 bytes of the SHA-256 of its method, URL, body
/// and the headers that choose a representation (see [`key`]).
pub type Key = [u8; 16];

/// The validators of a representation, as the server sent them, and the next page it named.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` header, as sent (quotes and `W/` included).
    pub etag: Option<String>,
    /// The `Last-Modified` header, as sent (an HTTP date).
    pub last_modified: Option<String>,
    /// When paginating, the next page that the response named: a `304` names none, so the walk
    /// goes on from the one the stored response named.
    pub next: Option<String>,
}

impl Validators {
    /// The longest `ETag` kept: real ones are a hash or a version, far shorter.
    pub const MAX_ETAG: usize = 1024;

    /// The validators of a response with `headers`; `None` when it has neither (nothing to ask
    /// the server next time).
    pub fn of_response(headers: &HeaderMap) -> Option<Validators> {
        let text = |name: http::header::HeaderName, max: usize| {
            headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty() && v.len() <= max)
        };
        let etag = text(http::header::ETAG, Self::MAX_ETAG).map(str::to_owned);
        let last_modified = text(http::header::LAST_MODIFIED, 64)
            .filter(|v| httpdate::parse_http_date(v).is_ok())
            .map(str::to_owned);
        (etag.is_some() || last_modified.is_some()).then_some(Validators { etag, last_modified, next: None })
    }

    /// Whether there is anything to send (a stored entry with neither is a deletion).
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// Where validators are kept between runs.
///
/// `get` is called once per request before it is sent and `put` once after, for every request
/// whose validators changed, both on the driver's task: they must be quick (an in-memory index and
/// a read of the page cache; an append to a buffer).
pub trait ValidatorStore: Send + Sync + fmt::Debug {
    /// The validators kept for the request `key`, if any.
    fn get(&self, key: &Key) -> Option<Validators>;
    /// Keeps `validators` for the request `key` (empty ones: forget it).
    fn put(&self, key: &Key, validators: &Validators);
}

/// Request headers that do not choose what the server answers with, or that change between runs
/// of the same request: they stay out of the [`Key`].
const NOT_IN_KEY: [http::header::HeaderName; 7] = [
    http::header::USER_AGENT,
    // The body is decoded, whatever the coding: the same representation.
    http::header::ACCEPT_ENCODING,
    // Credentials rotate (a token an hour) without changing what is asked for.
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
    http::header::IF_NONE_MATCH,
    http::header::IF_MODIFIED_SINCE,
];

/// The key of the request whose first hop is `hop`: its method, URL, body, and its headers but
/// the ones that do not choose a representation (`User-Agent`, `Accept-Encoding`, credentials,
/// conditions). Two requests with the same key ask for the same thing.
pub fn key(hop: &Hop) -> Key {
    let mut hash = Context::new(&SHA256);
    let mut part = |bytes: &[u8]| {
        hash.update(&(bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    part(hop.method.as_str().as_bytes());
    part(hop.url.as_str().as_bytes());
    part(hop.body.as_deref().unwrap_or_default());
    let mut headers: Vec<(&str, &[u8])> = hop
        .headers
        .iter()
        .filter(|(name, _)| !NOT_IN_KEY.contains(name))
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    headers.sort_unstable();
    for (name, value) in headers {
        part(name.as_bytes());
        part(value);
    }
    let digest = hash.finish();
    let mut key = [0; 16];
    key.copy_from_slice(&digest.as_ref()[..16]);
    key
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn hop(url: &str, headers: &[(&str, &str)]) -> Hop {
        let headers: HeaderMap = headers
            .iter()
            .map(|(n, v)| (http::HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap()))
            .collect();
        Hop { method: http::Method::GET, url: url.parse().unwrap(), headers: Arc::new(headers), body: None }
    }

    #[test]
    fn the_key_follows_what_is_asked_and_not_who_asks() {
        let base = key(&hop("http://a.test/x", &[("accept", "application/json")]));
        assert_eq!(
            base,
            key(&hop("http://a.test/x", &[("accept", "application/json"), ("user-agent", "b")]))
        );
        assert_eq!(
            base,
            key(&hop("http://a.test/x", &[("authorization", "Bearer new"), ("accept", "application/json")]))
        );
        assert_ne!(base, key(&hop("http://a.test/y", &[("accept", "application/json")])));
        assert_ne!(base, key(&hop("http://a.test/x", &[("accept", "text/html")])));
        let mut post = hop("http://a.test/x", &[("accept", "application/json")]);
        post.method = http::Method::POST;
        assert_ne!(base, key(&post));
    }

    #[test]
    fn validators_are_taken_only_when_usable() {
        let mut headers = HeaderMap::new();
        assert_eq!(Validators::of_response(&headers), None);
        headers.insert(http::header::LAST_MODIFIED, "yesterday".parse().unwrap());
        assert_eq!(Validators::of_response(&headers), None, "not an HTTP date");
        headers.insert(http::header::ETAG, "W/\"v1\"".parse().unwrap());
        headers.insert(http::header::LAST_MODIFIED, "Thu, 01 Jan 2026 00:00:00 GMT".parse().unwrap());
        let v = Validators::of_response(&headers).unwrap();
        assert_eq!(v.etag.as_deref(), Some("W/\"v1\""));
        assert_eq!(v.last_modified.as_deref(), Some("Thu, 01 Jan 2026 00:00:00 GMT"));
    }
}
