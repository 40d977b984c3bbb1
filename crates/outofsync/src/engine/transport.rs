//! The engine's [`Exchange`]: one HTTP exchange on hyper — send a request on a pooled
//! connection, wait for the head, take in the body within every limit, and say precisely what
//! went wrong when something did.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::Either;
use http::header::{
    CONNECTION, CONTENT_LENGTH, HOST, HeaderName, HeaderValue, TE, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, Request, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::time::Instant;
use url::{Position, Url};

use super::config::{BuildError, Config, HttpVersion};
use super::connector::Connector;
use super::decode::BodyBuffer;
use super::exchange::{Exchange, Exchanged, Hop, Resent, Response, Wire, is_redirect};
use super::failure::{Failure, body_failure, hyper_failure, stale_connection};
use super::pool::{Conn, Ending, Pool, PoolConfig, Target};
use super::proxy::Proxies;
use super::retry::is_idempotent;
use super::tls;
use crate::record::ErrorKind;

/// Largest HTTP/1 response head (status line and headers), in bytes.
pub const MAX_HEAD_BYTES: usize = 256 * 1024;
/// How much of a redirect's body is read so its connection can be reused.
const REDIRECT_DRAIN: u64 = 64 * 1024;
/// How long an idle keep-alive connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The connection pool and the limits of one exchange.
pub(crate) struct Transport {
    pool: Pool,
    host_headers: HostHeaders,
    proxies: Proxies,
    prior_knowledge: bool,
    read_timeout: Duration,
    max_body: u64,
    max_redirects: u32,
}

impl Transport {
    /// The transport of `config`; `defaults` is `config.headers`, the map the request machine
    /// shares with every request that sets no header of its own.
    pub fn new(config: &Config, defaults: Arc<HeaderMap>) -> Result<Self, BuildError> {
        let alpn: &[&[u8]] = match config.http {
            HttpVersion::Auto => &[b"h2", b"http/1.1"],
            HttpVersion::Http1Only => &[b"http/1.1"],
            HttpVersion::Http2PriorKnowledge => &[b"h2"],
        };
        let tls = tls::client_config(config.ca_file.as_deref(), config.insecure, alpn)?;
        let connector = Connector::new(&config.resolve, config.connect_timeout, tls);
        let pool = Pool::new(
            connector,
            PoolConfig {
                http: config.http,
                // Every connection in use can wait idle once its request is done, and no more:
                // the requests in flight are bounded by the concurrency.
                max_idle: config.concurrency.max(1),
                idle_timeout: IDLE_TIMEOUT,
                max_head: MAX_HEAD_BYTES,
                // A connection with streams waiting is asked for a sign of life well within
                // the read timeout that would otherwise end them one by one.
                ping: (config.read_timeout / 2).clamp(Duration::from_secs(1), Duration::from_secs(15)),
            },
        );
        Ok(Self {
            pool,
            host_headers: HostHeaders::new(defaults),
            proxies: config.proxies.clone(),
            prior_knowledge: config.http == HttpVersion::Http2PriorKnowledge,
            read_timeout: config.read_timeout,
            max_body: config.max_body,
            max_redirects: config.max_redirects,
        })
    }
}

impl Exchange for Transport {
    async fn exchange(&self, hop: &Hop, wire: &mut Wire) -> Result<Exchanged, Failure> {
        let key = origin_key(&hop.url);
        let https = hop.url.scheme() == "https";
        let (host, port) = (
            hop.url.host_str().unwrap_or_default(),
            hop.url.port_or_known_default().unwrap_or(if https { 443 } else { 80 }),
        );
        let route =
            if self.proxies.is_none() { None } else { self.proxies.route(hop.url.scheme(), host, port) };
        let target = Target { key: &key, host, port, https, proxy: route.as_ref() };
        // Timed out, the send is dropped with its connection: an HTTP/1 connection is closed,
        // an HTTP/2 stream retires its connection.
        let (response, conn) = tokio::time::timeout(self.read_timeout, self.send(hop, &target, wire))
            .await
            .map_err(|_| self.idle("waiting for the response"))??;
        // The connection goes back to the pool once the body has been read to its end, unless
        // the server said it closes it.
        let reusable = if keeps_alive(&response) { Ending::Reusable } else { Ending::Spent };
        // hyper bounds the head's memory by its read buffer, but a head can end up to one read
        // past it; the limit itself is held here.
        let head: usize = response.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
        if head > MAX_HEAD_BYTES {
            self.pool.release(&key, conn, Ending::Spent);
            return Err(Failure::new(
                ErrorKind::Decode,
                format!(
                    "the response head is too large: {head} bytes of headers, over the limit of {MAX_HEAD_BYTES}"
                ),
            ));
        }
        let status = response.status();
        if let Some(location) = is_redirect(self.max_redirects, status, response.headers()).cloned() {
            let drained = self.drain(response.into_body()).await;
            self.pool.release(&key, conn, if drained { reusable } else { Ending::Spent });
            return Ok(Exchanged::Redirect { status, location });
        }
        let (head, body) = response.into_parts();
        match self.take_body(&head.headers, body).await {
            Ok(body) => {
                self.pool.release(&key, conn, reusable);
                Ok(Exchanged::Response(Response { status, headers: head.headers, body }))
            }
            Err(failure) => {
                let ending =
                    if failure.kind == ErrorKind::Timeout { Ending::TimedOut } else { Ending::Spent };
                self.pool.release(&key, conn, ending);
                Err(failure)
            }
        }
    }
}

/// Why a request was not answered on a connection.
enum SendError {
    /// It was never written: the connection had closed before.
    Unsent,
    /// It was written, and the connection failed before the response head.
    Sent(hyper::Error),
}

/// Connections a request may find closed before it is written, before it gives up.
const UNSENT_TRIES: u32 = 4;

impl Transport {
    /// Sends `hop` on a connection of the pool and waits for the response head.
    async fn send(
        &self,
        hop: &Hop,
        target: &Target<'_>,
        wire: &mut Wire,
    ) -> Result<(http::Response<Incoming>, Conn), Failure> {
        let mut checkout = self.pool.checkout(target).await?;
        let mut unsent = 0;
        loop {
            wire.version = Some(checkout.conn.version());
            wire.reused = checkout.reused;
            let started = Instant::now();
            // The request is made once the connection can take it, and handed over at once: held
            // in this future across an await, its 256 bytes would be part of every request in
            // flight (and again in each future below it).
            let sent = match ready(&mut checkout.conn).await {
                Ok(()) => {
                    {
                        let request = self.outgoing(hop, target, checkout.conn.is_h2())?;
                        send_on(&mut checkout.conn, request)
                    }
                    .await
                }
                Err(unsent) => Err(unsent),
            };
            match sent {
                Ok(response) => return Ok((response, checkout.conn)),
                Err(SendError::Unsent) => {
                    // Never written to the wire: any request may go on another connection.
                    unsent += 1;
                    self.pool.release(target.key, checkout.conn, Ending::Spent);
                    if unsent >= UNSENT_TRIES {
                        return Err(Failure::new(
                            ErrorKind::Io,
                            format!(
                                "{unsent} connections to {} closed before the request could be sent",
                                target.key
                            ),
                        ));
                    }
                    checkout = self.pool.checkout(target).await?;
                }
                Err(SendError::Sent(e)) => {
                    // A server may close an idle keep-alive connection at any time, without
                    // notice, and the pool can hand it out before the close is seen. A request
                    // that dies that way was most likely never read, so an idempotent one goes
                    // once more, at once, on a new connection (as curl and browsers do): a send
                    // the record counts, but not a retry, which would cost a backoff.
                    let failure = hyper_failure(&e, "the response head");
                    if !(checkout.reused
                        && wire.resent.is_none()
                        && stale_connection(&e, checkout.conn.is_h2())
                        && is_idempotent(&hop.method))
                    {
                        self.pool.release(target.key, checkout.conn, Ending::Spent);
                        return Err(failure);
                    }
                    wire.resent = Some(Resent { failure, elapsed: started.elapsed() });
                    self.pool.release(target.key, checkout.conn, Ending::Spent);
                    checkout = self.pool.fresh(target).await?;
                }
            }
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

/// Waits until `conn` can take a request; [`SendError::Unsent`] if it closed first.
async fn ready(conn: &mut Conn) -> Result<(), SendError> {
    let ready = match conn {
        Conn::H1(sender) => sender.ready().await,
        // HTTP/2's senders share one connection: any of them tells whether it is still open, and
        // sending does not need the same one.
        Conn::H2(lease) => lease.sender().ready().await,
    };
    ready.map_err(|_| SendError::Unsent)
}

/// Hands `request` to `conn`, found [`ready`], and waits for the response head. hyper takes the
/// request before this returns, so the future holds only what waits for the answer.
fn send_on(
    conn: &mut Conn,
    request: Request<Full<Bytes>>,
) -> impl Future<Output = Result<http::Response<Incoming>, SendError>> + use<> {
    let sent = match conn {
        Conn::H1(sender) => Either::Left(sender.try_send_request(request)),
        Conn::H2(lease) => Either::Right(lease.sender().try_send_request(request)),
    };
    sent.map(|sent| {
        sent.map_err(|mut e| {
            if e.take_message().is_some() { SendError::Unsent } else { SendError::Sent(e.into_error()) }
        })
    })
}

/// The origin of `url` as the pool's key: scheme, host and port as the URL writes them (a default
/// port is never written), without credentials.
fn origin_key(url: &Url) -> std::borrow::Cow<'_, str> {
    if url.username().is_empty() && url.password().is_none() {
        std::borrow::Cow::Borrowed(&url[..Position::AfterPort])
    } else {
        std::borrow::Cow::Owned(format!(
            "{}://{}",
            url.scheme(),
            &url[Position::BeforeHost..Position::AfterPort]
        ))
    }
}

impl Transport {
    /// The request of `hop` as it goes to `target` (over HTTP/2 if `h2`): a plain http:// request to an
    /// HTTP proxy that forwards it goes in absolute form, with the proxy's credentials.
    fn outgoing(&self, hop: &Hop, target: &Target<'_>, h2: bool) -> Result<Request<Full<Bytes>>, Failure> {
        let forward = target
            .proxy
            .filter(|route| !target.https && !self.prior_knowledge && route.forwards_http() && !h2);
        let mut request = self.request(hop, h2, forward.is_some())?;
        if let Some(value) = forward.and_then(|route| route.authorization.clone()) {
            request.headers_mut().insert(http::header::PROXY_AUTHORIZATION, value);
        }
        Ok(request)
    }

    /// The request of `hop`: over HTTP/1.1 in origin-form (absolute-form for a proxy that forwards
    /// it) with a `Host` header; over HTTP/2 with the authority in the URI (hyper sends it as
    /// `:authority`) and no `Host` (RFC 9113 §8.3.1).
    fn request(&self, hop: &Hop, h2: bool, absolute: bool) -> Result<Request<Full<Bytes>>, Failure> {
        let unusable = |e: &dyn std::fmt::Display| {
            Failure::new(ErrorKind::InvalidRequest, format!("URL {} is not usable: {e}", hop.url))
        };
        let (uri, headers) = if h2 {
            let (authority, headers) = self.host_headers.h2_of(hop);
            let uri = Uri::builder()
                .scheme(hop.url.scheme())
                .authority(
                    authority.as_deref().unwrap_or(&hop.url[Position::BeforeHost..Position::AfterPort]),
                )
                .path_and_query(&hop.url[Position::BeforePath..Position::AfterQuery])
                .build()
                .map_err(|e| unusable(&e))?;
            (uri, headers)
        } else {
            // hyper writes the URI as it is given: origin-form, the path and query; for a proxy that
            // forwards the request, absolute-form, the whole URL without its credentials.
            let path = &hop.url[Position::BeforePath..Position::AfterQuery];
            let uri: Uri =
                if absolute { format!("{}{path}", origin_key(&hop.url)).parse() } else { path.parse() }
                    .map_err(|e| unusable(&e))?;
            (uri, self.host_headers.of(hop))
        };
        let mut request = Request::new(Full::new(hop.body.clone().unwrap_or_default()));
        *request.method_mut() = hop.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// `headers` as HTTP/2 sends them, and the authority a `Host` header among them asks for.
///
/// HTTP/2 forbids the connection-specific headers of HTTP/1.1 (RFC 9113 §8.2.2); a `Host` set
/// by the user names the authority instead.
fn h2_headers(headers: &HeaderMap) -> (Option<String>, HeaderMap) {
    let mut headers = headers.clone();
    let authority = headers.remove(HOST).and_then(|v| v.to_str().ok().map(str::to_owned));
    for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    for name in ["keep-alive", "proxy-connection"] {
        headers.remove(HeaderName::from_static(name));
    }
    if headers.get(TE).is_some_and(|te| !te.as_bytes().eq_ignore_ascii_case(b"trailers")) {
        headers.remove(TE);
    }
    (authority, headers)
}

/// The headers of requests that set none of their own — the fetcher's defaults — with `Host`
/// added, for the last origin they went to: most requests of a run share both, and a clone of the
/// finished map costs half of building it (no hash and insert per header, no `Host` value made
/// and checked anew).
struct HostHeaders {
    /// The fetcher's defaults, the very map the request machine shares with such requests.
    defaults: Arc<HeaderMap>,
    /// The last origin, and its finished map. One lock a request; with one event-loop thread (the
    /// default) it is never contended.
    last: Mutex<Option<(Box<str>, HeaderMap)>>,
    /// The defaults as HTTP/2 sends them: cleaned once, not on every request (six lookups).
    h2_defaults: (Option<String>, HeaderMap),
}

impl HostHeaders {
    fn new(defaults: Arc<HeaderMap>) -> Self {
        let h2_defaults = h2_headers(&defaults);
        Self { defaults, last: Mutex::default(), h2_defaults }
    }

    /// The headers `hop` is sent with over HTTP/2, and the authority its own `Host` asks for.
    fn h2_of(&self, hop: &Hop) -> (Option<String>, HeaderMap) {
        if Arc::ptr_eq(&hop.headers, &self.defaults) {
            return self.h2_defaults.clone();
        }
        h2_headers(&hop.headers)
    }

    /// The headers `hop` is sent with over HTTP/1.1: its own, and `Host` (from its URL) unless
    /// it sets one.
    fn of(&self, hop: &Hop) -> HeaderMap {
        // Sliced from the URL's text (a default port is never written there) rather than formatted.
        let origin = &hop.url[Position::BeforeHost..Position::AfterPort];
        if !Arc::ptr_eq(&hop.headers, &self.defaults) {
            return with_host(&hop.headers, origin);
        }
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, headers)) = last.as_ref()
            && **seen == *origin
        {
            return headers.clone();
        }
        let headers = with_host(&hop.headers, origin);
        *last = Some((origin.into(), headers.clone()));
        headers
    }
}

/// `own`, and `Host: origin` unless it sets one.
fn with_host(own: &HeaderMap, origin: &str) -> HeaderMap {
    // Sized for one more than the hop's own, so that adding `Host` does not grow it.
    let mut headers = HeaderMap::with_capacity(own.len() + 1);
    if !own.contains_key(HOST)
        && let Ok(value) = HeaderValue::from_str(origin)
    {
        headers.insert(HOST, value);
    }
    for (name, value) in own {
        headers.append(name, value.clone());
    }
    headers
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

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

    /// The headers built for a request are those of its own hop, whatever was built before: the
    /// last map is reused only for the fetcher's defaults and the same origin.
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
        let cache = HostHeaders::new(defaults.clone());
        let headers = |hop: &Hop| cache.of(hop);
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
        // The defaults changed for one request (a redirect drops a header) are a map of its own.
        let mut changed = defaults.clone();
        Arc::make_mut(&mut changed).remove("accept");
        assert!(!headers(&hop("http://b.test/8", &changed)).contains_key("accept"));
        assert!(headers(&hop("http://b.test/9", &defaults)).contains_key("accept"));
    }
}
