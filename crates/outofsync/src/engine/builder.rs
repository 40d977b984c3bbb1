//! [`FetcherBuilder`]: a setter for every knob of [`Config`], each with its default, and every
//! check made once, in [`FetcherBuilder::build`].

use std::path::PathBuf;
use std::time::Duration;

use http::HeaderMap;

use super::Fetcher;
use super::config::{
    BodyMode, BuildError, Config, HttpVersion, KeepHeaders, Rate, Resolve, SendHook, StatusRanges,
};
use super::filter::JqFilter;
use super::paginate::Paginate;

/// Builds a [`Fetcher`]. Every setting starts at the default of [`Config`] (each setter names it),
/// and every check is made once, by [`FetcherBuilder::build`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use outofsync::Fetcher;
///
/// let fetcher = Fetcher::builder()
///     .concurrency(128)
///     .per_host(8)
///     .rate("50/s".parse()?)
///     .retries(5)
///     .timeout(Duration::from_secs(30))
///     .build()?;
/// assert_eq!(fetcher.config().concurrency, 128);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
#[derive(Clone, Debug, Default)]
pub struct FetcherBuilder {
    config: Config,
}

impl FetcherBuilder {
    /// Replaces the whole configuration (the setters then change it further).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Requests in flight at once, over all hosts. Default: 64.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.config.concurrency = n;
        self
    }

    /// Requests in flight at once to one host (scheme, name and port). Default: no limit beyond
    /// the concurrency.
    pub fn per_host(mut self, n: usize) -> Self {
        self.config.per_host = Some(n);
        self
    }

    /// Time allowed to connect, TCP and TLS together. Default: 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }

    /// Time allowed for one attempt, from sending to the end of the body. Default: 120 s.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.config.timeout = d;
        self
    }

    /// Time allowed without receiving anything. Default: 30 s.
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.config.read_timeout = d;
        self
    }

    /// Time allowed for one input from its first attempt to its last, waits included.
    /// Default: 300 s.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.config.deadline = d;
        self
    }

    /// Retries after the first attempt. Default: 2.
    pub fn retries(mut self, n: u32) -> Self {
        self.config.retry.retries = n;
        self
    }

    /// The first backoff before a retry; it doubles with each retry, with full jitter.
    /// Default: 500 ms.
    pub fn backoff(mut self, d: Duration) -> Self {
        self.config.retry.backoff = d;
        self
    }

    /// The longest backoff. Default: 30 s.
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.config.retry.max_backoff = d;
        self
    }

    /// The longest `Retry-After` honoured; a longer one ends the retries. Default: 60 s.
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.config.retry.max_retry_after = d;
        self
    }

    /// Retry `POST` and `PATCH` too (they may then take effect twice). Default: off.
    pub fn retry_non_idempotent(mut self, yes: bool) -> Self {
        self.config.retry.non_idempotent = yes;
        self
    }

    /// Requests per host per period, paced evenly. Default: none.
    pub fn rate(mut self, rate: Rate) -> Self {
        self.config.rate = Some(rate);
        self
    }

    /// Requests over all hosts per period, paced evenly. Default: none.
    pub fn global_rate(mut self, rate: Rate) -> Self {
        self.config.global_rate = Some(rate);
        self
    }

    /// Redirects followed before giving up; 0 follows none. Default: 10.
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.config.max_redirects = n;
        self
    }

    /// Refuse a redirect from `https` to `http`. Default: off.
    pub fn https_only(mut self, yes: bool) -> Self {
        self.config.https_only = yes;
        self
    }

    /// The largest body accepted, on the wire and once decompressed. Default: 32 MiB.
    pub fn max_body(mut self, bytes: u64) -> Self {
        self.config.max_body = bytes;
        self
    }

    /// What the record keeps of the body. Default: [`BodyMode::Auto`].
    pub fn body(mut self, mode: BodyMode) -> Self {
        self.config.body = mode;
        self
    }

    /// Headers sent with every request that does not set the same name, in place of the
    /// defaults ([`default_headers`](super::default_headers): `User-Agent`, `Accept`,
    /// `Accept-Encoding`).
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.config.headers = headers;
        self
    }

    /// Connections to `host:port` go to these addresses, as curl's `--resolve`. Default: none.
    pub fn resolve(mut self, resolve: Resolve) -> Self {
        self.config.resolve.push(resolve);
        self
    }

    /// Trust the PEM certificates of this file (authorities, or a server's own self-signed
    /// certificate) instead of the built-in Mozilla roots. Default: none.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.ca_file = Some(path.into());
        self
    }

    /// Accept any TLS certificate. Dangerous. Default: off.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.config.insecure = yes;
        self
    }

    /// Which HTTP versions to speak. Default: [`HttpVersion::Auto`].
    pub fn http(mut self, version: HttpVersion) -> Self {
        self.config.http = version;
        self
    }

    /// Which statuses count as success. Default: 200–299.
    pub fn ok_status(mut self, ranges: StatusRanges) -> Self {
        self.config.ok_status = ranges;
        self
    }

    /// A jq program whose one output replaces each successful JSON body. Default: none.
    pub fn filter(mut self, filter: JqFilter) -> Self {
        self.config.filter = Some(filter);
        self
    }

    /// Walk paginated collections, each page its own record. Default: none.
    pub fn paginate(mut self, paginate: Paginate) -> Self {
        self.config.paginate = Some(paginate);
        self
    }

    /// The most pages walked per input. Default: 1000.
    pub fn max_pages(mut self, n: u32) -> Self {
        self.config.max_pages = n;
        self
    }

    /// Which response headers the record keeps. Default: [`KeepHeaders::None`].
    pub fn keep_headers(mut self, keep: KeepHeaders) -> Self {
        self.config.keep_headers = keep;
        self
    }

    /// Which proxy each request goes through. Default: none.
    pub fn proxies(mut self, proxies: super::Proxies) -> Self {
        self.config.proxies = proxies;
        self
    }

    /// Called right before a non-idempotent request is first sent (see [`SendHook`]).
    /// Default: none.
    pub fn before_unsafe_send(mut self, hook: SendHook) -> Self {
        self.config.before_unsafe_send = Some(hook);
        self
    }

    /// What authenticates requests: fixed credentials, OAuth2 tokens, or a provider of one's own
    /// (see [`auth`](crate::auth)). Default: none.
    pub fn auth(mut self, provider: impl crate::auth::Auth + 'static) -> Self {
        self.config.auth = Some(std::sync::Arc::new(provider));
        self
    }

    /// Sends the credentials of [`FetcherBuilder::auth`] to `host` too (repeatable). Default: none
    /// given, which means only to the host and port of the first request.
    pub fn auth_host(mut self, host: crate::auth::AuthHost) -> Self {
        self.config.auth_hosts.push(host);
        self
    }

    /// Limits shared with other processes (see [`FleetLimits`](super::FleetLimits)). Default: none.
    pub fn shared_limits(mut self, limits: super::SharedLimits) -> Self {
        self.config.shared_limits = Some(limits);
        self
    }

    /// Checks the configuration and builds the fetcher (its connection pool is empty until the
    /// first request).
    ///
    /// # Errors
    /// A setting is out of range or contradicts another, or the CA file cannot be used.
    pub fn build(self) -> Result<Fetcher, BuildError> {
        check(&self.config)?;
        Fetcher::from_checked(self.config)
    }
}

/// Every rule a configuration must keep; the messages name the command-line flags too, which
/// are the same settings.
fn check(config: &Config) -> Result<(), BuildError> {
    let invalid = |message: &str| Err(BuildError::Invalid(message.to_owned()));
    if config.concurrency == 0 {
        return invalid("the concurrency (-c) must be at least 1");
    }
    if config.per_host == Some(0) {
        return invalid("the per-host limit (--per-host) must be at least 1");
    }
    for (value, name) in [
        (config.connect_timeout, "--connect-timeout"),
        (config.timeout, "--timeout"),
        (config.read_timeout, "--read-timeout"),
        (config.deadline, "--deadline"),
    ] {
        if value.is_zero() {
            return Err(BuildError::Invalid(format!("{name} must be longer than 0")));
        }
    }
    if config.max_pages == 0 {
        return invalid("--max-pages must be at least 1");
    }
    if config.auth.is_none() && !config.auth_hosts.is_empty() {
        return invalid("--auth-host names where credentials go, and none are given");
    }
    let keeps_json = matches!(config.body, BodyMode::Auto | BodyMode::Json);
    if config.filter.is_some() && !keeps_json {
        return Err(BuildError::Invalid(format!(
            "a jq filter (--jq) needs JSON bodies, and --body {} keeps none: every record would fail",
            config.body.name()
        )));
    }
    if matches!(config.paginate, Some(Paginate::Json { .. })) && !keeps_json {
        return Err(BuildError::Invalid(format!(
            "--paginate json:… reads the next page from JSON bodies, and --body {} keeps none",
            config.body.name()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(builder: FetcherBuilder) -> String {
        builder.build().expect_err("refused").to_string()
    }

    #[test]
    fn every_contradiction_is_refused_by_build_with_the_flag_named() {
        let jq = || JqFilter::compile(".id").unwrap();
        assert!(refused(FetcherBuilder::default().concurrency(0)).contains("-c"));
        assert!(refused(FetcherBuilder::default().per_host(0)).contains("--per-host"));
        assert!(refused(FetcherBuilder::default().timeout(Duration::ZERO)).contains("--timeout"));
        assert!(refused(FetcherBuilder::default().max_pages(0)).contains("--max-pages"));
        let message = refused(FetcherBuilder::default().filter(jq()).body(BodyMode::None));
        assert!(message.contains("--jq") && message.contains("--body none"), "{message}");
        assert!(refused(FetcherBuilder::default().filter(jq()).body(BodyMode::Text)).contains("--body text"));
        let paginate: Paginate = "json:.next".parse().unwrap();
        assert!(
            refused(FetcherBuilder::default().paginate(paginate).body(BodyMode::None)).contains("--paginate")
        );
        assert!(FetcherBuilder::default().filter(jq()).body(BodyMode::Json).build().is_ok());
    }

    #[test]
    fn every_setter_sets_its_knob() {
        let fetcher = FetcherBuilder::default()
            .concurrency(3)
            .per_host(2)
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2))
            .read_timeout(Duration::from_secs(3))
            .deadline(Duration::from_secs(4))
            .retries(5)
            .backoff(Duration::from_millis(6))
            .max_backoff(Duration::from_millis(7))
            .max_retry_after(Duration::from_secs(8))
            .retry_non_idempotent(true)
            .rate("9/s".parse().unwrap())
            .global_rate("10/m".parse().unwrap())
            .max_redirects(11)
            .https_only(true)
            .max_body(12)
            .body(BodyMode::Json)
            .headers(HeaderMap::new())
            .resolve("a.test:80:127.0.0.1".parse().unwrap())
            .danger_accept_invalid_certs(true)
            .http(HttpVersion::Http1Only)
            .ok_status("200-299,404".parse().unwrap())
            .filter(JqFilter::compile(".").unwrap())
            .paginate(Paginate::Link)
            .max_pages(13)
            .keep_headers(KeepHeaders::All)
            .before_unsafe_send(SendHook::new(|_| Ok(())))
            .build()
            .unwrap();
        let c = fetcher.config();
        assert_eq!(
            (c.concurrency, c.per_host, c.retry.retries, c.max_redirects, c.max_pages),
            (3, Some(2), 5, 11, 13)
        );
        assert_eq!((c.connect_timeout, c.timeout, c.read_timeout, c.deadline).3, Duration::from_secs(4));
        assert_eq!(
            (c.retry.backoff, c.retry.max_backoff),
            (Duration::from_millis(6), Duration::from_millis(7))
        );
        assert!(c.retry.non_idempotent && c.https_only && c.insecure && c.before_unsafe_send.is_some());
        assert_eq!((c.rate.unwrap().count, c.global_rate.unwrap().count, c.max_body), (9, 10, 12));
        assert_eq!(
            (c.body, c.http, c.headers.len(), c.resolve.len()),
            (BodyMode::Json, HttpVersion::Http1Only, 0, 1)
        );
        assert!(c.ok_status.contains(404) && c.filter.is_some() && c.paginate.is_some());
        assert_eq!(c.keep_headers, KeepHeaders::All);
    }
}
