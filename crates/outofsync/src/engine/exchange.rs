//! What a request's state machine and a transport say to each other: the [`Hop`] to send, and
//! what came back — a [`Response`], a redirect, or a [`Failure`] — with what the wire saw.
//! [`Exchange`] is what carries one; the engine's is the hyper [`Transport`](super::transport::Transport).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderValue;
use http::{HeaderMap, Method, StatusCode, Version};
use url::Url;

use super::failure::Failure;

/// A request as sent on one hop of a redirect chain.
#[derive(Clone, Debug)]
pub struct Hop {
    /// The method.
    pub method: Method,
    /// The URL.
    pub url: Url,
    /// The headers, the defaults merged in; shared with the fetcher's defaults when the request
    /// sets none of its own. A transport adds what the protocol needs (`Host`, or `:authority`).
    pub headers: std::sync::Arc<HeaderMap>,
    /// The body, if any.
    pub body: Option<Bytes>,
}

/// A complete response.
#[derive(Debug)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, decoded.
    pub body: Vec<u8>,
}

/// What came back from one exchange.
#[derive(Debug)]
pub enum Exchanged {
    /// A redirect for the state machine to follow or refuse: a 3xx (not 304) with a `Location`,
    /// when following is on ([`is_redirect`]).
    Redirect {
        /// The status.
        status: StatusCode,
        /// The `Location` header.
        location: HeaderValue,
    },
    /// A final response.
    Response(Response),
}

/// The `Location` of a response that is a redirect to follow (when `max_redirects` allows any):
/// a 3xx status other than 304 with a `Location` header.
pub fn is_redirect(max_redirects: u32, status: StatusCode, headers: &HeaderMap) -> Option<&HeaderValue> {
    let follows = max_redirects > 0 && status.is_redirection() && status != StatusCode::NOT_MODIFIED;
    follows.then(|| headers.get(http::header::LOCATION)).flatten()
}

/// What the wire saw of one exchange besides its outcome. Filled in as the exchange goes, so
/// that it holds even for an exchange cut short by a timeout.
#[derive(Debug, Default)]
pub struct Wire {
    /// The protocol of the connection the request went out on.
    pub version: Option<Version>,
    /// Whether that connection had carried requests before.
    pub reused: bool,
    /// A send before the last one: on a reused connection that turned out closed, after which
    /// the request went out again at once on a new connection.
    pub resent: Option<Resent>,
}

/// A send that met a connection the server had already closed.
#[derive(Debug)]
pub struct Resent {
    /// How that send failed.
    pub failure: Failure,
    /// How long it took.
    pub elapsed: Duration,
}

/// What carries one exchange: the HTTP [`Transport`] in use, or a scripted fake in tests.
///
/// The request loop (`execute`) is written against this trait so that its time logic — backoff,
/// `Retry-After`, cooldowns, deadlines — runs on tokio's paused clock with no socket in the way (a
/// paused runtime jumps time forward whenever every task waits, which would fire real sockets'
/// timeouts at once).
pub(crate) trait Exchange: Send + Sync + 'static {
    /// Sends `hop` and takes in its response, within the transport's own limits, noting in
    /// `wire` what went over the wire.
    fn exchange(&self, hop: &Hop, wire: &mut Wire)
    -> impl Future<Output = Result<Exchanged, Failure>> + Send;
}
