//! [`Config`]: every knob of the engine, with the defaults that `--help` prints.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use http::HeaderMap;

use super::filter::JqFilter;
use super::paginate::Paginate;
pub use super::proxy::Proxies;
pub use super::retry::RetryPolicy;
use crate::request::ParseError;

/// Why a fetcher could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The `--cacert` file could not be used.
    #[error("cannot use the CA file {}: {why}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// TLS could not be set up.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// A setting is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// Everything the engine can be told. Build one with [`Fetcher::builder`](crate::Fetcher::builder)
/// (a setter per field), or change the fields of `Config::default()` and pass it to
/// [`FetcherBuilder::config`](crate::FetcherBuilder::config).
///
/// Non-exhaustive: later versions add knobs, each with a default.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Config {
    /// Requests in flight at once, over all hosts. Default: 64.
    pub concurrency: usize,
    /// Requests in flight at once to one host (scheme, name and port). Default: no extra limit.
    pub per_host: Option<usize>,
    /// Time allowed to connect (TCP and TLS). Default: 10 s.
    pub connect_timeout: Duration,
    /// Time allowed for one attempt, from sending to the end of the body. Default: 120 s.
    pub timeout: Duration,
    /// Time allowed without receiving anything while waiting for a response. Default: 30 s.
    pub read_timeout: Duration,
    /// Time allowed for one input from its first attempt to its last, retries and backoff
    /// included. Default: 300 s.
    pub deadline: Duration,
    /// What is retried, how often and how long to wait.
    pub retry: RetryPolicy,
    /// Requests per host per unit of time. Default: none.
    pub rate: Option<Rate>,
    /// Requests over all hosts per unit of time. Default: none.
    pub global_rate: Option<Rate>,
    /// Redirects followed before giving up; 0 does not follow any. Default: 10.
    pub max_redirects: u32,
    /// Refuse to follow a redirect from `https` to `http`. Default: off.
    pub https_only: bool,
    /// The largest body accepted, on the wire and once decompressed. Default: 32 MiB.
    pub max_body: u64,
    /// What the record keeps of the body. Default: [`BodyMode::Auto`].
    pub body: BodyMode,
    /// Headers sent with every request, unless the request sets the same name.
    /// Default: `User-Agent: outofsync/VERSION`, `Accept: application/json, */*;q=0.5` and
    /// `Accept-Encoding: gzip, deflate, br, zstd`.
    pub headers: HeaderMap,
    /// Host names resolved to fixed addresses, as curl's `--resolve HOST:PORT:ADDR`.
    pub resolve: Vec<Resolve>,
    /// Trust these PEM certificates instead of the built-in (Mozilla) roots. Default: none.
    pub ca_file: Option<PathBuf>,
    /// Accept any TLS certificate. Dangerous; default: off.
    pub insecure: bool,
    /// Which HTTP versions to speak. Default: [`HttpVersion::Auto`].
    pub http: HttpVersion,
    /// Which statuses count as success. Default: 200–299.
    pub ok_status: StatusRanges,
    /// A jq program applied to each successful JSON body; its output replaces the body.
    /// Default: none.
    pub filter: Option<JqFilter>,
    /// How to walk paginated collections, each page its own record. Default: none.
    pub paginate: Option<Paginate>,
    /// The most pages walked per input. Default: 1000.
    pub max_pages: u32,
    /// Which response headers the record keeps. Default: [`KeepHeaders::None`].
    pub keep_headers: KeepHeaders,
    /// Which proxy each request goes through. Default: none ([`Proxies::from_env`] reads the
    /// environment as curl does).
    pub proxies: Proxies,
    /// Called right before a request whose method is not idempotent is sent for the first time.
    /// Default: none. See [`SendHook`].
    pub before_unsafe_send: Option<SendHook>,
    /// What authenticates requests (see [`auth`](crate::auth)). Default: none.
    pub auth: Option<std::sync::Arc<dyn crate::auth::Auth>>,
    /// The hosts [`Config::auth`] sends credentials to. Default: none given, which means the host
    /// and port of the first request.
    pub auth_hosts: Vec<crate::auth::AuthHost>,
    /// Limits shared with other processes — per-host turns and cooldowns held for a whole
    /// fleet of workers (see [`FleetLimits`](super::FleetLimits)). Default: none.
    pub shared_limits: Option<super::shared::SharedLimits>,
}

/// What [`Config::before_unsafe_send`] calls, with the request's input index (`record.i`), right
/// before a POST, PATCH or other non-idempotent request first goes out — once per request, not
/// per retry or redirect. An error keeps the request from being sent: it ends as an `io` failure
/// with that message and `attempts: 0`. `outofsync fetch --at-most-once` notes each index on disk
/// here, so that a resume never sends such a request twice.
#[derive(Clone)]
pub struct SendHook(std::sync::Arc<dyn Fn(u64) -> Result<(), String> + Send + Sync>);

impl SendHook {
    /// A hook that calls `f`.
    pub fn new(f: impl Fn(u64) -> Result<(), String> + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(f))
    }

    pub(crate) fn call(&self, i: u64) -> Result<(), String> {
        (self.0)(i)
    }
}

impl fmt::Debug for SendHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendHook(..)")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            concurrency: 64,
            per_host: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
            read_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            rate: None,
            global_rate: None,
            max_redirects: 10,
            https_only: false,
            max_body: 32 << 20,
            body: BodyMode::Auto,
            headers: default_headers(),
            resolve: Vec::new(),
            ca_file: None,
            insecure: false,
            http: HttpVersion::Auto,
            ok_status: StatusRanges::default(),
            filter: None,
            paginate: None,
            max_pages: 1000,
            keep_headers: KeepHeaders::None,
            proxies: Proxies::none(),
            before_unsafe_send: None,
            auth: None,
            auth_hosts: Vec::new(),
            shared_limits: None,
        }
    }
}

impl Config {
    /// The headers a request is sent with: its own, then every header of [`Config::headers`] whose
    /// name it does not set.
    pub fn headers_for(&self, mut own: HeaderMap) -> HeaderMap {
        if own.is_empty() {
            // Most requests set none: one clone instead of an insert (and a hash) per header.
            return self.headers.clone();
        }
        for (name, value) in &self.headers {
            if !own.contains_key(name) {
                own.insert(name.clone(), value.clone());
            }
        }
        own
    }
}

/// The headers every request carries unless it sets its own.
pub fn default_headers() -> HeaderMap {
    use http::header::{ACCEPT, ACCEPT_ENCODING, HeaderValue, USER_AGENT};
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_static(concat!("outofsync/", env!("CARGO_PKG_VERSION"))));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json, */*;q=0.5"));
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br, zstd"));
    headers
}

/// What goes into the record of the body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyMode {
    /// JSON under `json` when the body is JSON, else UTF-8 under `text`, else base64 under `body_b64`.
    #[default]
    Auto,
    /// The body must be JSON; anything else fails the request with `decode`.
    Json,
    /// The body as text (`body_b64` when it is not UTF-8), never parsed.
    Text,
    /// No body in the record (it is still read, counted and checked against `max_body`).
    None,
}

impl std::str::FromStr for BodyMode {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "auto" => Ok(BodyMode::Auto),
            "json" => Ok(BodyMode::Json),
            "text" => Ok(BodyMode::Text),
            "none" => Ok(BodyMode::None),
            other => Err(ParseError(format!("unknown body mode {other:?} (use auto, json, text or none)"))),
        }
    }
}

impl fmt::Display for BodyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl BodyMode {
    /// The names `--body` takes, in the order of the variants.
    pub const NAMES: [&'static str; 4] = ["auto", "json", "text", "none"];

    /// The name of the mode, as `--body` takes it.
    pub fn name(self) -> &'static str {
        match self {
            BodyMode::Auto => "auto",
            BodyMode::Json => "json",
            BodyMode::Text => "text",
            BodyMode::None => "none",
        }
    }
}

/// Which response headers go into the record (`headers`, an object of lower-case names; a name
/// sent more than once has an array of its values).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KeepHeaders {
    /// None (`headers` is left out).
    #[default]
    None,
    /// All of them (`-i/--include`).
    All,
    /// Only these (`--keep-header NAME`).
    Only(Vec<http::HeaderName>),
}

impl KeepHeaders {
    /// Whether `name` is kept.
    pub fn keeps(&self, name: &http::HeaderName) -> bool {
        match self {
            KeepHeaders::None => false,
            KeepHeaders::All => true,
            KeepHeaders::Only(names) => names.contains(name),
        }
    }
}

/// Which HTTP versions the client speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1, or HTTP/2 when TLS negotiates it (ALPN).
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1Only,
    /// HTTP/2 without negotiation, also over plain TCP (h2c).
    Http2PriorKnowledge,
}

/// A rate: `count` requests per `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per period (at least 1).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl Rate {
    /// The time between two requests at this rate.
    pub fn interval(&self) -> Duration {
        self.per / self.count.max(1)
    }
}

impl FromStr for Rate {
    type Err = ParseError;

    /// `N/s`, `N/m`, `N/h` or plain `N` (per second).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let (count, unit) = s.split_once('/').unwrap_or((s, "s"));
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| ParseError(format!("rate {s:?}: the count must be a whole number above 0")))?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => return Err(ParseError(format!("rate {s:?}: unknown unit {other:?} (use s, m or h)"))),
        };
        Ok(Rate { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "m",
            3600 => "h",
            _ => return write!(f, "{}/{:?}", self.count, self.per),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// A `--resolve HOST:PORT:ADDR[,ADDR…]` entry: connections to `host:port` go to these addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolve {
    /// The host name, lower case.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Where to connect instead.
    pub addrs: Vec<IpAddr>,
}

impl FromStr for Resolve {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bad = || ParseError(format!("--resolve {s:?}: expected HOST:PORT:ADDR[,ADDR…]"));
        let (host, rest) = s.split_once(':').ok_or_else(bad)?;
        let (port, addrs) = rest.split_once(':').ok_or_else(bad)?;
        let port = port.parse().map_err(|_| bad())?;
        let addrs = addrs
            .split(',')
            .map(|a| {
                a.trim().trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().map_err(|_| bad())
            })
            .collect::<Result<Vec<_>, _>>()?;
        if host.is_empty() || addrs.is_empty() {
            return Err(bad());
        }
        Ok(Resolve { host: host.to_ascii_lowercase(), port, addrs })
    }
}

/// Sets of statuses, as `200-299,304`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRanges(Vec<(u16, u16)>);

impl StatusRanges {
    /// Whether `status` is in one of the ranges.
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

impl fmt::Display for StatusRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, &(lo, hi)) in self.0.iter().enumerate() {
            let sep = if n == 0 { "" } else { "," };
            if lo == hi { write!(f, "{sep}{lo}")? } else { write!(f, "{sep}{lo}-{hi}")? }
        }
        Ok(())
    }
}

impl Default for StatusRanges {
    fn default() -> Self {
        StatusRanges(vec![(200, 299)])
    }
}

impl FromStr for StatusRanges {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let parse = |t: &str| {
            t.trim()
                .parse::<u16>()
                .ok()
                .filter(|n| (100..600).contains(n))
                .ok_or_else(|| ParseError(format!("status {t:?} is not a number within 100..=599")))
        };
        s.split(',')
            .map(|part| match part.split_once('-') {
                Some((lo, hi)) => Ok((parse(lo)?, parse(hi)?)),
                None => parse(part).map(|n| (n, n)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(StatusRanges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_resolves_and_status_ranges_parse() {
        assert_eq!("20/s".parse::<Rate>().unwrap().interval(), Duration::from_millis(50));
        assert_eq!("120/m".parse::<Rate>().unwrap().interval(), Duration::from_millis(500));
        assert_eq!("5".parse::<Rate>().unwrap().count, 5);
        assert!("0/s".parse::<Rate>().is_err());
        assert!("5/fortnight".parse::<Rate>().is_err());
        let r: Resolve = "API.test:443:127.0.0.1,[::1]".parse().unwrap();
        assert_eq!((r.host.as_str(), r.port, r.addrs.len()), ("api.test", 443, 2));
        assert!("nohost".parse::<Resolve>().is_err());
        let ok: StatusRanges = "200-299,404".parse().unwrap();
        assert!(ok.contains(404) && ok.contains(250) && !ok.contains(500));
        assert_eq!(ok.to_string(), "200-299,404");
    }
}
