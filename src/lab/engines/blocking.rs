//! [`BlockingClient`]: a truly blocking HTTP client (ureq: `std::net`, no runtime inside) that
//! turns a request into the same [`Record`] as [`Fetcher`](crate::Fetcher) does.
//!
//! The thread that calls [`BlockingClient::fetch`] is parked in `read(2)` until the response
//! comes — which is the point of the `threads` and `pool` engines. `reqwest::blocking` would not
//! do: it runs a tokio runtime on a thread of its own and only blocks on a channel.
//!
//! Fairness with the async client, setting by setting:
//! - HTTP/1.1 on both sides, the same headers (ureq's own `User-Agent` and `Accept` are replaced
//!   by the config's), no compression asked for, one attempt, the same timeouts and body limit;
//! - the idle connection pool is as large as the concurrency (ureq keeps only 3 per host by
//!   default, which would reconnect for nearly every request), like hyper's, which is unbounded;
//! - ureq's buffers are 8 KiB each way instead of 128 KiB, as hyper's (its read buffer starts at
//!   8 KiB and grows only as needed, its write buffer is 8 KiB), so neither client is charged for
//!   memory the other does not use;
//! - host names are never resolved: the lab uses IP literals, and ureq's own resolver would start a
//!   thread per connection to enforce its timeout, which is not part of the model under test.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use http::header::CONTENT_ENCODING;
use ureq::http;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::engine::{BodyMode, Config, classify_body};
use crate::record::{ErrorKind, Record, RecordError};
use crate::request::{Input, RequestSpec};

/// The size of ureq's read and write buffers, per connection: hyper's.
pub const BUFFER_BYTES: usize = 8 * 1024;

/// A blocking client configured from a [`Config`]; cheap to share between threads (`Sync`: the
/// connection pool is behind ureq's own lock).
pub struct BlockingClient {
    agent: ureq::Agent,
    /// The settings of the lab's clients: headers, body mode, body limit, statuses that count as ok.
    config: Config,
}

impl fmt::Debug for BlockingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingClient").finish_non_exhaustive()
    }
}

impl BlockingClient {
    /// A client with `config`'s timeouts, limits, headers and body mode, keeping up to
    /// `config.concurrency` idle connections. Settings that only the async engine has (retries,
    /// rate limits, `--resolve`, TLS options) are not used: the lab turns them off on both sides.
    pub fn new(config: &Config) -> Self {
        let ureq_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(config.max_redirects)
            .save_redirect_history(true)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_per_call(Some(config.timeout))
            .timeout_global(Some(config.deadline))
            .timeout_per_read(Some(config.read_timeout))
            .max_idle_connections(config.concurrency)
            .max_idle_connections_per_host(config.concurrency)
            .input_buffer_size(BUFFER_BYTES)
            .output_buffer_size(BUFFER_BYTES)
            .build();
        Self {
            agent: ureq::Agent::with_parts(ureq_config, DefaultConnector::new(), LiteralResolver),
            config: config.clone(),
        }
    }

    /// The record of input number `i`: exactly one, whatever happens.
    pub fn fetch(&self, i: u64, input: Input) -> Record {
        match input {
            Input::Invalid(invalid) => Record::invalid(i, invalid.line, invalid.message),
            Input::Request(spec) => self.execute(i, *spec),
            // The lab never paginates; a continued walk is fetched as the one page it names.
            Input::Page { spec, page } => Record { page: Some(page), ..self.execute(i, *spec) },
            Input::Unsent { spec, page, error } => {
                Record { page, error: Some(error), ..Record::for_request(i, &spec) }
            }
        }
    }

    fn execute(&self, i: u64, spec: RequestSpec) -> Record {
        let started = Instant::now();
        let mut record = Record { attempts: 1, ..Record::for_request(i, &spec) };
        let mut request = http::Request::builder().method(spec.method).uri(spec.url.as_str());
        *request.headers_mut().expect("a valid method and URL") = self.config.headers_for(spec.headers);
        let sent = match &spec.body {
            Some(body) => request.body(&body[..]).map(|r| self.agent.run(r)),
            None => request.body(()).map(|r| self.agent.run(r)),
        };
        let outcome = match sent {
            Ok(Ok(response)) => self.settle(&mut record, response),
            Ok(Err(e)) => Err(failure(&e)),
            Err(e) => Err(RecordError::new(ErrorKind::InvalidRequest, e.to_string())),
        };
        if let Err(error) = outcome {
            record.error = Some(error);
        }
        record.ok = record.error.is_none();
        record.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        record
    }

    /// Reads the body and fills the record, as the async engine's `settle` does.
    fn settle(
        &self,
        record: &mut Record,
        mut response: http::Response<ureq::Body>,
    ) -> Result<(), RecordError> {
        use ureq::ResponseExt;
        // The history holds the request's own URL first, then one per redirect followed.
        let hops = response.get_redirect_history().map_or(0, |h| h.len().saturating_sub(1));
        if hops > 0 {
            record.redirects = hops as u32;
            record.final_url = Some(response.get_uri().to_string());
        }
        let status = response.status();
        record.http = Some(response.version());
        if let Some(coding) = response.headers().get(CONTENT_ENCODING).filter(|c| c.as_bytes() != b"identity")
        {
            return Err(RecordError::new(
                ErrorKind::Decode,
                format!("the lab's blocking client does not decode Content-Encoding {coding:?}"),
            ));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(self.config.max_body)
            .read_to_vec()
            .map_err(|e| failure(&e))?;
        record.status = Some(status.as_u16());
        record.bytes = Some(body.len() as u64);
        let ok_status = self.config.ok_status.contains(status.as_u16());
        // As in the engine: a failed status keeps whatever body it came with, as best it can be read.
        let mode =
            if ok_status || self.config.body == BodyMode::None { self.config.body } else { BodyMode::Auto };
        record.payload =
            classify_body(body, mode).map_err(|message| RecordError::new(ErrorKind::Decode, message))?;
        if !ok_status {
            let reason = status.canonical_reason().unwrap_or("");
            let message = format!("{} {reason}", status.as_u16()).trim_end().to_owned();
            return Err(RecordError::new(ErrorKind::HttpStatus, message));
        }
        Ok(())
    }
}

/// ureq's error as the record's: the same kinds the async engine reports for the same causes.
fn failure(e: &ureq::Error) -> RecordError {
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
    RecordError::new(kind, e.to_string())
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
