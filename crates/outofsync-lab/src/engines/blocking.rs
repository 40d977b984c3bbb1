//! [`BlockingClient`]: a truly blocking HTTP client (ureq: `std::net`, no runtime inside) that
//! drives the same request [`machine`](outofsync::engine::machine) as [`Fetcher`](outofsync::Fetcher):
//! the same retries, backoff, `Retry-After`, cooldowns, redirects and deadlines, and so the very
//! same [`Record`]s. Only the waiting differs: this thread sleeps and blocks where the engine's
//! tasks yield to their event loop.
//!
//! The thread that calls [`BlockingClient::fetch`] is parked in `read(2)` until the response
//! comes — which is the point of the `threads` and `pool` engines. `reqwest::blocking` would not
//! do: it runs a tokio runtime on a thread of its own and only blocks on a channel.
//!
//! Fairness with the async client, setting by setting:
//! - HTTP/1.1 on both sides, the same headers (ureq's own `User-Agent` and `Accept` are replaced
//!   by the config's), no compression asked for, the same timeouts and body limit;
//! - ureq follows no redirect itself: the machine does, as for the engine;
//! - the idle connection pool is as large as the concurrency (ureq keeps only 3 per host by
//!   default, which would reconnect for nearly every request), like hyper's, which is unbounded;
//! - ureq's buffers are 8 KiB each way instead of 128 KiB, as hyper's (its read buffer starts at
//!   8 KiB and grows only as needed, its write buffer is 8 KiB), so neither client is charged for
//!   memory the other does not use;
//! - host names are never resolved: the lab uses IP literals, and ureq's own resolver would start a
//!   thread per connection to enforce its timeout, which is not part of the model under test.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use http::header::CONTENT_ENCODING;
use ureq::http;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use outofsync::engine::Config;
use outofsync::engine::machine::{
    Event, Exchanged, Failure, Hop, Request, Response, Step, Wire, is_redirect,
};
use outofsync::record::{ErrorKind, Record};
use outofsync::request::Input;

/// The size of ureq's read and write buffers, per connection: hyper's.
pub const BUFFER_BYTES: usize = 8 * 1024;

/// A blocking client configured from a [`Config`]; cheap to share between threads (`Sync`: the
/// connection pool is behind ureq's own lock).
pub struct BlockingClient {
    agent: ureq::Agent,
    /// The settings of the lab's clients: headers, body mode, body limit, statuses that count as ok.
    config: Config,
    /// Origins cooling down after a `Retry-After`, and until when.
    cooldowns: Mutex<HashMap<String, Instant>>,
}

impl fmt::Debug for BlockingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingClient").finish_non_exhaustive()
    }
}

impl BlockingClient {
    /// A client with `config`'s timeouts, limits, headers and body mode, keeping up to
    /// `config.concurrency` idle connections. Settings that only the async engine has (rate
    /// limits, `--resolve`, TLS options) are not used: the lab turns them off on both sides.
    pub fn new(config: &Config) -> Self {
        let ureq_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_per_read(Some(config.read_timeout))
            .max_idle_connections(config.concurrency)
            .max_idle_connections_per_host(config.concurrency)
            .input_buffer_size(BUFFER_BYTES)
            .output_buffer_size(BUFFER_BYTES)
            .build();
        Self {
            agent: ureq::Agent::with_parts(ureq_config, DefaultConnector::new(), LiteralResolver),
            config: config.clone(),
            cooldowns: Mutex::default(),
        }
    }

    /// The record of input number `i`: exactly one, whatever happens.
    pub fn fetch(&self, i: u64, input: Input) -> Record {
        let mut request = match Request::new(&self.config, i, input) {
            Ok(request) => request,
            Err(record) => return *record,
        };
        let mut event = Event::Start;
        loop {
            event = match request.step(event, Instant::now()) {
                Step::Turn { .. } => {
                    // Threads are the lab's only limit on concurrency; a cooldown holds them.
                    let until = self.cooldowns.lock().unwrap().get(&origin(&request.hop().url)).copied();
                    if let Some(until) = until {
                        std::thread::sleep(until.saturating_duration_since(Instant::now()));
                    }
                    Event::Turn
                }
                Step::Send { budget } => self.exchange(request.hop(), budget),
                // The lab's configurations carry no credentials, so this never comes; were it
                // to, the request would end unsent rather than go out without them.
                Step::Authorize { .. } => Event::AuthFailed(Failure::new(
                    ErrorKind::Auth,
                    "the lab's blocking client sends no credentials",
                )),
                Step::Wait { until, cool_down } => {
                    self.cool_down(request.hop(), cool_down);
                    std::thread::sleep(until.saturating_duration_since(Instant::now()));
                    Event::Waited
                }
                Step::Done { cool_down } => {
                    self.cool_down(request.hop(), cool_down);
                    return request.finish(Instant::now()).record;
                }
            };
        }
    }

    fn cool_down(&self, hop: &Hop, until: Option<Instant>) {
        if let Some(until) = until {
            let mut cooldowns = self.cooldowns.lock().unwrap();
            let entry = cooldowns.entry(origin(&hop.url)).or_insert(until);
            *entry = (*entry).max(until);
        }
    }

    /// Sends `hop` and takes in its response within `budget`.
    fn exchange(&self, hop: &Hop, budget: std::time::Duration) -> Event {
        let wire = Wire::default();
        let mut request = http::Request::builder().method(hop.method.clone()).uri(hop.url.as_str());
        *request.headers_mut().expect("a valid method and URL") = (*hop.headers).clone();
        let sent = match &hop.body {
            Some(body) => request.body(&body[..]).map(|r| {
                self.agent.run(self.agent.configure_request(r).timeout_global(Some(budget)).build())
            }),
            None => request.body(()).map(|r| {
                self.agent.run(self.agent.configure_request(r).timeout_global(Some(budget)).build())
            }),
        };
        let mut response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(ureq::Error::Timeout(ureq::Timeout::Global))) => return Event::TimedOut(wire),
            Ok(Err(e)) => return Event::Exchanged(Err(failure(&e)), wire),
            Err(e) => {
                return Event::Exchanged(Err(Failure::new(ErrorKind::InvalidRequest, e.to_string())), wire);
            }
        };
        let wire = Wire { version: Some(response.version()), ..wire };
        let status = response.status();
        if let Some(location) = is_redirect(self.config.max_redirects, status, response.headers()) {
            let location = location.clone();
            return Event::Exchanged(Ok(Exchanged::Redirect { status, location }), wire);
        }
        if let Some(coding) = response.headers().get(CONTENT_ENCODING).filter(|c| c.as_bytes() != b"identity")
        {
            let message = format!("the lab's blocking client does not decode Content-Encoding {coding:?}");
            return Event::Exchanged(Err(Failure::new(ErrorKind::Decode, message)), wire);
        }
        let body = response.body_mut().with_config().limit(self.config.max_body).read_to_vec();
        match body {
            Ok(body) => {
                let headers = std::mem::take(response.headers_mut());
                Event::Exchanged(Ok(Exchanged::Response(Response { status, headers, body })), wire)
            }
            Err(ureq::Error::Timeout(ureq::Timeout::Global)) => Event::TimedOut(wire),
            Err(e) => Event::Exchanged(Err(failure(&e)), wire),
        }
    }
}

/// The origin of `url`, as a key of the cooldowns.
fn origin(url: &url::Url) -> String {
    format!("{}://{}", url.scheme(), &url[url::Position::BeforeHost..url::Position::AfterPort])
}

/// ureq's error as the record's: the same kinds the async engine reports for the same causes.
fn failure(e: &ureq::Error) -> Failure {
    use ureq::Error as E;
    let kind = match e {
        E::Timeout(_) => ErrorKind::Timeout,
        E::HostNotFound => ErrorKind::Dns,
        E::ConnectionFailed => ErrorKind::Connect,
        E::Io(io) if is_connect(io.kind()) => ErrorKind::Connect,
        E::Io(io) if io.kind() == io::ErrorKind::TimedOut => ErrorKind::Timeout,
        E::Io(_) => ErrorKind::Io,
        E::BodyExceedsLimit(_) => ErrorKind::TooLarge,
        E::TooManyRedirects | E::RedirectFailed => ErrorKind::Redirect,
        E::BadUri(_) | E::Http(_) | E::RequireHttpsOnly(_) => ErrorKind::InvalidRequest,
        E::Tls(_) => ErrorKind::Tls,
        _ => ErrorKind::Decode,
    };
    Failure::new(kind, e.to_string())
}

fn is_connect(kind: io::ErrorKind) -> bool {
    use io::ErrorKind as K;
    matches!(kind, K::ConnectionRefused | K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable)
}

/// Resolves IP literals in place, without ureq's resolver thread; names go to ureq's resolver.
#[derive(Debug)]
struct LiteralResolver;

impl Resolver for LiteralResolver {
    fn resolve(
        &self,
        uri: &http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                let mut addrs = self.empty();
                addrs.push(SocketAddr::new(ip, port));
                Ok(addrs)
            }
            Err(_) => DefaultResolver::default().resolve(uri, config, timeout),
        }
    }
}
