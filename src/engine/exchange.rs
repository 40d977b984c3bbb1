//! One HTTP exchange: send a request, wait for the head, take in the body within every limit, and
//! say precisely what went wrong when something did.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, HeaderValue, LOCATION};
use http::{HeaderMap, Method, Request, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{self, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use url::{Position, Url};

use super::BuildError;
use super::config::{Config, HttpVersion};
use super::connector::{ConnectError, Connector};
use super::decode::{BodyBuffer, BodyError};
use super::pool::{OpenError, Pool, Sender};
use super::retry::is_idempotent;
use super::tls;
use crate::record::ErrorKind;

/// Largest HTTP/1 response head (status line and headers), in bytes.
pub const MAX_HEAD_BYTES: usize = 256 * 1024;
/// How much of a redirect's body is read so its connection can be reused.
const REDIRECT_DRAIN: u64 = 64 * 1024;
/// How long an idle keep-alive connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A request as sent on one hop of a redirect chain.
#[derive(Clone, Debug)]
pub(crate) struct Hop {
    pub method: Method,
    pub url: Url,
    /// Shared with the fetcher's defaults when the request sets none of its own.
    pub headers: std::sync::Arc<HeaderMap>,
    pub body: Option<Bytes>,
}

/// Why an exchange failed: a record's error kind and message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

impl From<BodyError> for Failure {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge(m) => Failure::new(ErrorKind::TooLarge, m),
            BodyError::Decode(m) => Failure::new(ErrorKind::Decode, m),
        }
    }
}

/// A complete response.
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body, decoded.
    pub body: Vec<u8>,
}

/// What came back from one exchange.
pub(crate) enum Exchanged {
    /// A redirect to follow (only when following is on).
    Redirect { status: StatusCode, location: HeaderValue },
    /// A final response.
    Response(Response),
}

/// What carries one exchange: the HTTP [`Transport`] in use, or a scripted fake in tests.
///
/// The request loop (`execute`) is written against this trait so that its time logic — backoff,
/// `Retry-After`, cooldowns, deadlines — runs on tokio's paused clock with no socket in the way (a
/// paused runtime jumps time forward whenever every task waits, which would fire real sockets'
/// timeouts at once).
pub(crate) trait Exchange: Send + Sync + 'static {
    /// Sends `hop` and takes in its response, within the transport's own limits.
    fn exchange(&self, hop: &Hop) -> impl Future<Output = Result<Exchanged, Failure>> + Send;
}

/// The HTTP clients and the limits of one exchange.
///
/// Plain `http://` over HTTP/1 goes through the engine's own [`Pool`] of hyper connections, the
/// hot path of a fetcher; `https://` (HTTP/1 or HTTP/2, as ALPN decides) and HTTP/2 with prior
/// knowledge go through hyper-util's pooled client.
pub(crate) struct Transport {
    /// Plain `http://` over HTTP/1; `None` with `--http2-prior-knowledge`.
    pool: Option<Pool>,
    client: Client<Connector, Full<Bytes>>,
    /// The same client without a pool, for the one resend after a stale keep-alive connection:
    /// the pool may hold more connections that the server has closed, and the resend must not
    /// take one of them.
    fresh: Client<Connector, Full<Bytes>>,
    read_timeout: Duration,
    max_body: u64,
    follow: bool,
}

impl Transport {
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        let alpn: &[&[u8]] = match config.http {
            HttpVersion::Auto => &[b"h2", b"http/1.1"],
            HttpVersion::Http1Only => &[b"http/1.1"],
            HttpVersion::Http2PriorKnowledge => &[b"h2"],
        };
        let tls = tls::client_config(config.ca_file.as_deref(), config.insecure, alpn)?;
        let connector = Connector::new(&config.resolve, config.connect_timeout, tls);
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            // Header floods are refused by hyper's own limit of 100 header lines, deliberately not
            // set here: setting any value (even 100) makes hyper build and zero a scratch array of
            // that size for every response, where its default is an inline one.
            .http1_max_buf_size(MAX_HEAD_BYTES)
            .http2_max_header_list_size(MAX_HEAD_BYTES as u32)
            .http2_only(config.http == HttpVersion::Http2PriorKnowledge);
        let client = builder.build(connector.clone());
        builder.pool_max_idle_per_host(0);
        // Every connection in use can wait idle once its request is done, and no more: the
        // requests in flight are bounded by the concurrency.
        let pool = (config.http != HttpVersion::Http2PriorKnowledge)
            .then(|| Pool::new(connector.clone(), config.concurrency.max(1), IDLE_TIMEOUT, MAX_HEAD_BYTES));
        Ok(Self {
            pool,
            client,
            fresh: builder.build(connector),
            read_timeout: config.read_timeout,
            max_body: config.max_body,
            follow: config.max_redirects > 0,
        })
    }
}

impl Exchange for Transport {
    async fn exchange(&self, hop: &Hop) -> Result<Exchanged, Failure> {
        let (response, conn) = tokio::time::timeout(self.read_timeout, self.send(hop))
            .await
            .map_err(|_| self.idle("waiting for the response"))??;
        // The connection goes back to the pool once the body has been read to its end, unless
        // the server said it closes it.
        let conn = conn.filter(|_| keeps_alive(&response));
        // hyper bounds the head's memory by its read buffer, but a head can end up to one read
        // past it; the limit itself is held here.
        let head: usize = response.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
        if head > MAX_HEAD_BYTES {
            return Err(Failure::new(
                ErrorKind::Decode,
                format!(
                    "the response head is too large: {head} bytes of headers, over the limit of {MAX_HEAD_BYTES}"
                ),
            ));
        }
        let status = response.status();
        if self.follow
            && status.is_redirection()
            && status != StatusCode::NOT_MODIFIED
            && let Some(location) = response.headers().get(LOCATION).cloned()
        {
            if self.drain(response.into_body()).await {
                self.put_back(hop, conn);
            }
            return Ok(Exchanged::Redirect { status, location });
        }
        let (head, body) = response.into_parts();
        let body = self.take_body(&head.headers, body).await?;
        self.put_back(hop, conn);
        Ok(Exchanged::Response(Response { status, headers: head.headers, body }))
    }
}

/// A response and, when it came through the engine's own pool, its connection.
type Sent = (http::Response<Incoming>, Option<Sender>);

impl Transport {
    /// Sends `hop` and waits for the response head.
    async fn send(&self, hop: &Hop) -> Result<Sent, Failure> {
        match &self.pool {
            Some(pool) if hop.url.scheme() == "http" => {
                self.send_pooled(pool, hop).await.map(|(response, conn)| (response, Some(conn)))
            }
            _ => self.send_by_client(hop).await.map(|response| (response, None)),
        }
    }

    /// Sends `hop` on an idle connection of its origin if there is one, else on a new one.
    async fn send_pooled(
        &self,
        pool: &Pool,
        hop: &Hop,
    ) -> Result<(http::Response<Incoming>, Sender), Failure> {
        let origin = &hop.url[Position::BeforeHost..Position::AfterPort];
        // hyper writes the URI as it is given: origin-form, the path and query.
        let target = &hop.url[Position::BeforePath..Position::AfterQuery];
        let mut request = request(hop, target)?;
        while let Some(mut conn) = pool.take(origin) {
            if conn.ready().await.is_err() {
                continue; // closed since it was put back
            }
            match conn.try_send_request(request).await {
                Ok(response) => return Ok((response, conn)),
                Err(mut e) => {
                    if let Some(unsent) = e.take_message() {
                        // Never written to the connection: any request may go on another.
                        request = unsent;
                        continue;
                    }
                    let e = e.into_error();
                    // A server may close an idle keep-alive connection at any time, without
                    // notice, and the pool can hand it out before the close is seen. A request
                    // that dies that way was most likely never read, so an idempotent one goes
                    // once more, at once, on a new connection (as curl and browsers do); it is
                    // not a retry, which would cost a backoff.
                    if !(stale_connection(Some(&e)) && is_idempotent(&hop.method)) {
                        return Err(hyper_failure(&e, "the response head"));
                    }
                    request = self::request(hop, target)?;
                    break;
                }
            }
        }
        let host = hop.url.host_str().unwrap_or_default();
        let port = hop.url.port_or_known_default().unwrap_or(80);
        let mut conn = pool.connect(host, port).await.map_err(|e| match e {
            OpenError::Connect(e) => connect_failure(&e),
            OpenError::Http(e) => hyper_failure(&e, "the response head"),
        })?;
        let sent = match conn.ready().await {
            Ok(()) => conn.try_send_request(request).await.map_err(|e| e.into_error()),
            Err(e) => Err(e),
        };
        sent.map(|response| (response, conn)).map_err(|e| hyper_failure(&e, "the response head"))
    }

    /// Sends `hop` through hyper-util's pooled client.
    async fn send_by_client(&self, hop: &Hop) -> Result<http::Response<Incoming>, Failure> {
        match self.client.request(request(hop, hop.url.as_str())?).await {
            // As in `send_pooled`, through a client without a pool: the pool may hold more
            // connections that the server has closed, and the resend must not take one of them.
            Err(e) if !e.is_connect() && stale_connection(e.source()) && is_idempotent(&hop.method) => {
                self.fresh.request(request(hop, hop.url.as_str())?).await
            }
            sent => sent,
        }
        .map_err(|e| client_failure(&e))
    }

    /// Gives `conn` back to the pool, its response read to the end.
    fn put_back(&self, hop: &Hop, conn: Option<Sender>) {
        if let (Some(pool), Some(conn)) = (&self.pool, conn) {
            pool.put(&hop.url[Position::BeforeHost..Position::AfterPort], conn);
        }
    }

    async fn take_body(&self, headers: &HeaderMap, mut body: Incoming) -> Result<Vec<u8>, Failure> {
        let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if let Some(n) = declared.filter(|&n| n > self.max_body) {
            return Err(Failure::new(
                ErrorKind::TooLarge,
                format!("Content-Length of {n} bytes is over the limit of {} bytes", self.max_body),
            ));
        }
        let mut buffer = BodyBuffer::new(headers, self.max_body, declared)?;
        loop {
            // A frame already there (a small body comes with its head) is taken without setting
            // a timer, which costs a read of the clock and a timer entry.
            let frame = match body.frame().now_or_never() {
                Some(frame) => frame,
                None => tokio::time::timeout(self.read_timeout, body.frame())
                    .await
                    .map_err(|_| self.idle("reading the body"))?,
            };
            match frame {
                None => break,
                Some(Err(e)) => return Err(body_failure(&e, buffer.wire_bytes())),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buffer.push(&data)?;
                    }
                }
            }
        }
        Ok(buffer.finish()?)
    }

    /// Reads (and drops) a little of an unwanted body so the connection can carry the next
    /// request; whether the body was read to its end.
    async fn drain(&self, mut body: Incoming) -> bool {
        let mut read = 0u64;
        while read < REDIRECT_DRAIN {
            match tokio::time::timeout(self.read_timeout.min(Duration::from_secs(1)), body.frame()).await {
                Ok(Some(Ok(frame))) => read += frame.data_ref().map_or(0, |d| d.len() as u64),
                Ok(None) => return true,
                _ => break,
            }
        }
        false
    }

    fn idle(&self, doing: &str) -> Failure {
        Failure::new(
            ErrorKind::Timeout,
            format!("nothing received for {:?} while {doing} (--read-timeout)", self.read_timeout),
        )
    }
}

/// The request of `hop`, to `target` (the URL, or its path and query for origin-form).
fn request(hop: &Hop, target: &str) -> Result<Request<Full<Bytes>>, Failure> {
    let uri: Uri = target.parse().map_err(|e| {
        Failure::new(ErrorKind::InvalidRequest, format!("URL {} is not usable: {e}", hop.url))
    })?;
    let mut request = Request::new(Full::new(hop.body.clone().unwrap_or_default()));
    *request.method_mut() = hop.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers(hop);
    Ok(request)
}

/// The headers of the last request built on this thread, and what they were built from.
///
/// Most requests of a run share their headers (the fetcher's defaults, behind one `Arc`) and
/// their origin, and a clone of the finished map costs half of building it: no hash and insert
/// per header, no `Host` value made and checked anew.
struct LastHeaders {
    /// The hop's headers; held, so that the pointer cannot be reused by another map.
    own: std::sync::Arc<HeaderMap>,
    /// The origin the `Host` value is from.
    origin: Box<str>,
    headers: HeaderMap,
}

thread_local! {
    static LAST_HEADERS: std::cell::RefCell<Option<LastHeaders>> = const { std::cell::RefCell::new(None) };
}

/// The headers `hop` is sent with: its own, and `Host` (from its URL) unless it sets one.
fn headers(hop: &Hop) -> HeaderMap {
    // Sliced from the URL's text (a default port is never written there) rather than formatted.
    let origin = &hop.url[Position::BeforeHost..Position::AfterPort];
    LAST_HEADERS.with_borrow_mut(|last| {
        if let Some(last) = last.as_ref()
            && std::sync::Arc::ptr_eq(&last.own, &hop.headers)
            && *last.origin == *origin
        {
            return last.headers.clone();
        }
        // Sized for one more than the hop's own, so that adding `Host` does not grow it.
        let mut headers = HeaderMap::with_capacity(hop.headers.len() + 1);
        if !hop.headers.contains_key(HOST)
            && let Ok(value) = HeaderValue::from_str(origin)
        {
            headers.insert(HOST, value);
        }
        for (name, value) in hop.headers.iter() {
            headers.append(name, value.clone());
        }
        // Kept only for headers that other requests share (the defaults): a request's own map is
        // its alone, and keeping it would cost a clone for nothing.
        if std::sync::Arc::strong_count(&hop.headers) > 1 {
            *last = Some(LastHeaders {
                own: hop.headers.clone(),
                origin: origin.into(),
                headers: headers.clone(),
            });
        }
        headers
    })
}

/// Whether the connection may carry another request after `response`: not when the server said
/// it closes it (HTTP/1.1's `Connection: close`, or HTTP/1.0 without `keep-alive`).
fn keeps_alive<B>(response: &http::Response<B>) -> bool {
    // On the bytes: most servers say `Connection: keep-alive` on every response, and this runs
    // for each one.
    let says =
        |token: &[u8]| {
            response.headers().get_all(CONNECTION).iter().any(|v| {
                v.as_bytes().split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
            })
        };
    if response.version() == Version::HTTP_10 { says(b"keep-alive") } else { !says(b"close") }
}

/// Whether a request failed as one sent on a connection the server had already closed fails:
/// the connection ended or reset before any of the response came. `cause` is the error (or, for
/// a client error, its first cause); connecting failures are not passed here.
fn stale_connection(cause: Option<&(dyn StdError + 'static)>) -> bool {
    let mut source = cause;
    while let Some(cause) = source {
        if let Some(h) = cause.downcast_ref::<hyper::Error>()
            && h.is_incomplete_message()
        {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
            return matches!(io.kind(), ConnectionReset | BrokenPipe | ConnectionAborted);
        }
        source = cause.source();
    }
    false
}

/// A failure of hyper-util's client before the response head arrived.
fn client_failure(e: &legacy::Error) -> Failure {
    let mut source: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(cause) = source {
        if let Some(c) = cause.downcast_ref::<ConnectError>() {
            return connect_failure(c);
        }
        if let Some(h) = cause.downcast_ref::<hyper::Error>() {
            return hyper_failure(h, "the response head");
        }
        source = cause.source();
    }
    Failure::new(ErrorKind::Io, describe(e))
}

/// A connection that could not be opened.
fn connect_failure(e: &ConnectError) -> Failure {
    let kind = match e {
        ConnectError::Dns { .. } => ErrorKind::Dns,
        ConnectError::Connect { .. } | ConnectError::NoHost => ErrorKind::Connect,
        ConnectError::Timeout { .. } => ErrorKind::Timeout,
        ConnectError::Tls { .. } => ErrorKind::Tls,
    };
    Failure::new(kind, describe(e))
}

/// A failure while the body was coming in.
fn body_failure(e: &hyper::Error, received: u64) -> Failure {
    let io_kind = std::iter::successors(e.source(), |&c| c.source())
        .find_map(|c| c.downcast_ref::<io::Error>())
        .map(io::Error::kind);
    // hyper says "incomplete" for a chunked body cut short, and passes on an unexpected end of
    // file from its length decoder for a Content-Length body cut short: the same event to us.
    if e.is_incomplete_message() || io_kind == Some(io::ErrorKind::UnexpectedEof) {
        return Failure::new(
            ErrorKind::Io,
            format!("the connection closed after {received} bytes, before the body was complete"),
        );
    }
    // Broken chunked framing comes as invalid data (or input) from hyper's decoder: the server's
    // fault, not the connection's, and not worth a retry.
    if matches!(io_kind, Some(io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput)) {
        let cause = std::iter::successors(e.source(), |&c| c.source())
            .last()
            .map_or_else(String::new, |c| c.to_string());
        return Failure::new(
            ErrorKind::Decode,
            format!("invalid HTTP in the body after {received} bytes: {cause}"),
        );
    }
    hyper_failure(e, "the body")
}

fn hyper_failure(e: &hyper::Error, what: &str) -> Failure {
    if e.is_timeout() {
        Failure::new(ErrorKind::Timeout, format!("timed out reading {what}"))
    } else if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        Failure::new(ErrorKind::Decode, format!("invalid HTTP in {what}: {}", describe(e)))
    } else if e.is_incomplete_message() {
        Failure::new(ErrorKind::Io, format!("the connection closed before {what} was complete"))
    } else {
        Failure::new(ErrorKind::Io, format!("reading {what} failed: {}", describe(e)))
    }
}

/// An error and its causes, as one line, without repeating a message a cause already says.
pub(crate) fn describe(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(version: Version, connection: &[&'static str]) -> http::Response<()> {
        let mut response = http::Response::new(());
        *response.version_mut() = version;
        for value in connection {
            response.headers_mut().append(CONNECTION, HeaderValue::from_static(value));
        }
        response
    }

    #[test]
    fn a_connection_is_kept_unless_the_response_says_it_closes() {
        assert!(keeps_alive(&response(Version::HTTP_11, &[])));
        assert!(keeps_alive(&response(Version::HTTP_11, &["keep-alive"])));
        assert!(!keeps_alive(&response(Version::HTTP_11, &["close"])));
        assert!(!keeps_alive(&response(Version::HTTP_11, &["Keep-Alive , CLOSE"])));
        assert!(!keeps_alive(&response(Version::HTTP_11, &["upgrade", "close"])));
        assert!(keeps_alive(&response(Version::HTTP_11, &["closed"])), "a token, not a substring");
        assert!(!keeps_alive(&response(Version::HTTP_10, &[])), "HTTP/1.0 closes by default");
        assert!(keeps_alive(&response(Version::HTTP_10, &["Keep-Alive"])));
    }

    /// The headers built for a request are those of its own hop, whatever was built before on
    /// the same thread: the last map is reused only for the same headers and the same origin.
    #[test]
    fn headers_are_the_hops_own_whatever_came_before() {
        use std::sync::Arc;
        let hop = |url: &str, headers: &Arc<HeaderMap>| Hop {
            method: Method::GET,
            url: Url::parse(url).unwrap(),
            headers: headers.clone(),
            body: None,
        };
        let listed = |map: &HeaderMap| {
            map.iter().map(|(n, v)| format!("{n}: {}", v.to_str().unwrap())).collect::<Vec<_>>()
        };
        let defaults = Arc::new(crate::engine::config::default_headers());
        let mut own = (*defaults).clone();
        own.insert("x-own", HeaderValue::from_static("1"));
        let own = Arc::new(own);
        let mut with_host = HeaderMap::new();
        with_host.insert(HOST, HeaderValue::from_static("virtual.test"));
        let with_host = Arc::new(with_host);

        for _ in 0..2 {
            for (url, map, host) in [
                ("http://a.test/1", &defaults, "a.test"),
                ("http://a.test/2", &defaults, "a.test"),
                ("http://a.test:8080/3", &defaults, "a.test:8080"),
                ("http://b.test/4", &defaults, "b.test"),
                ("http://b.test/5", &own, "b.test"),
                ("http://b.test/6", &with_host, "virtual.test"),
                ("http://b.test/7", &defaults, "b.test"),
            ] {
                let built = headers(&hop(url, map));
                let mut expected = vec![format!("host: {host}")];
                expected.extend(listed(map).into_iter().filter(|h| !h.starts_with("host:")));
                let mut got = listed(&built);
                got.sort();
                expected.sort();
                assert_eq!(got, expected, "{url}");
            }
        }
        // A map changed after it was used (a redirect drops a header) is a map of its own.
        let mut changed = own.clone();
        Arc::make_mut(&mut changed).remove("x-own");
        assert!(!headers(&hop("http://b.test/8", &changed)).contains_key("x-own"));
    }
}
