//! Authentication: the [`Credentials`] a request carries (headers and query parameters, every
//! value a secret), the providers that hand them out ([`Auth`]), and where they may go
//! ([`AuthHost`]).
//!
//! The providers here: [`Bearer`], [`Basic`] and [`ApiKey`] (a header or a query parameter) hold
//! fixed credentials; [`OAuth2`] fetches tokens from a token endpoint (client credentials, or a
//! refresh token that the server may rotate, kept in a [`RefreshTokenFile`]); [`Combined`] sends
//! several at once. A user can implement [`Auth`] for anything else.
//!
//! # How a request uses them
//!
//! The request [`machine`](crate::engine::machine) asks for credentials after each turn, right
//! before the send (`Step::Authorize`), so that a token goes out as fresh as it can be even after
//! a long wait for a rate limit. The engine's driver asks the provider, which hands out what it
//! holds or fetches a new token first — once for every request that asks meanwhile. A `401` to a
//! request sent with credentials that [refresh](Auth::refreshes) makes the machine ask for new ones
//! and send once more: a send counted in `attempts` and `history`, but not a retry. When none can
//! be had, the request ends as an `auth` failure without being sent.
//!
//! # Where they go
//!
//! Only to the hosts they are for ([`FetcherBuilder::auth_host`](crate::FetcherBuilder::auth_host);
//! by default the host and port of the first request), and never after a redirect to another
//! origin. Query parameters are added on the wire only: the record's `url` and the `-v` lines show
//! the URL without them, and the headers with every credential masked.

mod fixed;
mod oauth2;
mod token_file;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use url::Url;

pub use crate::engine::machine::{Failure, Hop, Response};
pub use fixed::{ApiKey, Basic, Bearer, Combined};
pub use oauth2::{ClientAuth, OAuth2};
pub use token_file::RefreshTokenFile;

/// A boxed future, as the methods of [`Auth`] and [`AuthClient`] return: they are called through
/// trait objects.
pub type AuthFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A provider of credentials. Implement it for a scheme the providers here do not cover.
///
/// # Examples
///
/// ```
/// use outofsync::auth::{Auth, AuthClient, AuthError, AuthFuture, Credentials};
///
/// /// A key that changes every day, from somewhere of the user's own.
/// #[derive(Debug)]
/// struct DailyKey;
///
/// impl Auth for DailyKey {
///     fn credentials<'a>(&'a self, _: &'a dyn AuthClient) -> AuthFuture<'a, Result<Credentials, AuthError>> {
///         Box::pin(async { Credentials::new().header("x-daily-key", "k-2024-06-01") })
///     }
///     fn describe(&self) -> String {
///         "daily key".into()
///     }
/// }
///
/// let fetcher = outofsync::Fetcher::builder().auth(DailyKey).build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Auth: Send + Sync + fmt::Debug {
    /// The credentials to send a request with now. Called right before every send, by every
    /// request in flight: hand out what is held, and fetch (once, for all who ask meanwhile) only
    /// when it is about to expire. `client` sends the provider's own requests (a token endpoint).
    ///
    /// # Errors
    /// None could be had: the request ends as an `auth` failure with the message, unsent.
    fn credentials<'a>(
        &'a self,
        client: &'a dyn AuthClient,
    ) -> AuthFuture<'a, Result<Credentials, AuthError>>;

    /// Whether a `401` may be cured by [`Auth::refresh`]: false for fixed credentials, which
    /// would only be refused again. Default: false.
    fn refreshes(&self) -> bool {
        false
    }

    /// New credentials in place of `refused`, which a server answered with `401`. Many requests
    /// may report the same refused credentials at once: fetch once for all of them, and hand
    /// those that report credentials already replaced the newer ones (compare
    /// [`Credentials::version`]). Default: [`Auth::credentials`].
    ///
    /// # Errors
    /// As [`Auth::credentials`].
    fn refresh<'a>(
        &'a self,
        refused: &'a Credentials,
        client: &'a dyn AuthClient,
    ) -> AuthFuture<'a, Result<Credentials, AuthError>> {
        _ = refused;
        self.credentials(client)
    }

    /// What the credentials are, without any secret (`"bearer"`, `"oauth2 client_credentials
    /// https://…"`): the resume manifest keeps a digest of it, so that a resume with other
    /// credentials (another user, another client) is refused, and one with a rotated token is not.
    fn describe(&self) -> String;
}

/// A shared provider is a provider: one may serve several fetchers.
impl<A: Auth + ?Sized> Auth for Arc<A> {
    fn credentials<'a>(
        &'a self,
        client: &'a dyn AuthClient,
    ) -> AuthFuture<'a, Result<Credentials, AuthError>> {
        (**self).credentials(client)
    }

    fn refreshes(&self) -> bool {
        (**self).refreshes()
    }

    fn refresh<'a>(
        &'a self,
        refused: &'a Credentials,
        client: &'a dyn AuthClient,
    ) -> AuthFuture<'a, Result<Credentials, AuthError>> {
        (**self).refresh(refused, client)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// What a provider sends its own requests with: the engine's transport (its TLS settings,
/// `--resolve`, timeouts and connection pool), outside the run's limits, with transient failures
/// (connect errors, timeouts, 429, 5xx) retried as requests are.
pub trait AuthClient: Send + Sync {
    /// Sends `request` and takes in its whole response, whatever its status.
    fn send(&self, request: Hop) -> AuthFuture<'_, Result<Response, Failure>>;
}

/// Why no credentials could be had; the message goes into the record of every request that
/// waited for them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    message: String,
}

impl AuthError {
    /// An error with this message (which must not hold a secret).
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What a request carries to authenticate: headers and query parameters, every value a secret.
///
/// Header values are marked sensitive (never shown by `Debug` or `-vv`, never put in an HTTP/2
/// compression table); query parameters are added to the URL on the wire only. Cheap to clone.
#[derive(Clone, Default)]
pub struct Credentials(Arc<Inner>);

#[derive(Clone, Default)]
struct Inner {
    headers: Vec<(HeaderName, HeaderValue)>,
    query: Vec<(String, String)>,
    version: u64,
}

impl Credentials {
    /// None yet; add them with [`Credentials::header`] and [`Credentials::query`].
    pub fn new() -> Self {
        Self::default()
    }

    /// `Authorization: Bearer TOKEN`.
    ///
    /// # Errors
    /// The token cannot go into a header (control characters).
    pub fn bearer(token: &str) -> Result<Self, AuthError> {
        Self::new().header(http::header::AUTHORIZATION, &format!("Bearer {token}"))
    }

    /// With the header `name: value` too (replacing one of the same name the request has).
    ///
    /// # Errors
    /// The name or the value is not valid in a header. The message names the header, not the value.
    pub fn header<N>(mut self, name: N, value: &str) -> Result<Self, AuthError>
    where
        N: TryInto<HeaderName>,
        N::Error: fmt::Display,
    {
        let name = name.try_into().map_err(|e| AuthError::new(format!("bad header name: {e}")))?;
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            AuthError::new(format!("the value of the {name} header has characters a header cannot hold"))
        })?;
        value.set_sensitive(true);
        let inner = Arc::make_mut(&mut self.0);
        inner.headers.retain(|(n, _)| *n != name);
        inner.headers.push((name, value));
        Ok(self)
    }

    /// With the query parameter `name=value` too (replacing one of the same name in the URL).
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        let inner = Arc::make_mut(&mut self.0);
        inner.query.retain(|(n, _)| *n != name);
        inner.query.push((name, value.into()));
        self
    }

    /// Marks these credentials as version `version` of their provider's: what [`Auth::refresh`]
    /// is given back tells it whether they were already replaced.
    pub fn with_version(mut self, version: u64) -> Self {
        Arc::make_mut(&mut self.0).version = version;
        self
    }

    /// The version set by [`Credentials::with_version`] (0 by default).
    pub fn version(&self) -> u64 {
        self.0.version
    }

    /// The headers.
    pub fn headers(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.0.headers.iter().map(|(n, v)| (n, v))
    }

    /// The query parameters.
    pub fn query_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.query.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// These and `other`'s, `other`'s winning where both set the same name; the version is
    /// `other`'s when it has one.
    pub fn merge(mut self, other: &Credentials) -> Self {
        for (name, value) in &other.0.headers {
            let inner = Arc::make_mut(&mut self.0);
            inner.headers.retain(|(n, _)| n != name);
            inner.headers.push((name.clone(), value.clone()));
        }
        for (name, value) in &other.0.query {
            self = self.query(name.clone(), value.clone());
        }
        if other.0.version != 0 {
            self = self.with_version(other.0.version);
        }
        self
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.0.headers.is_empty() && self.0.query.is_empty()
    }

    /// `hop` as it goes on the wire: with these headers, and these query parameters in its URL.
    pub(crate) fn apply(&self, hop: &Hop) -> Hop {
        let mut hop = hop.clone();
        if !self.0.headers.is_empty() {
            let headers = Arc::make_mut(&mut hop.headers);
            for (name, value) in &self.0.headers {
                headers.insert(name.clone(), value.clone());
            }
        }
        if !self.0.query.is_empty() {
            let names: Vec<&str> = self.0.query.iter().map(|(n, _)| n.as_str()).collect();
            rewrite_query(&mut hop.url, &names, |_| None);
            let mut pairs = hop.url.query_pairs_mut();
            for (name, value) in &self.0.query {
                pairs.append_pair(name, value);
            }
        }
        hop
    }

    /// `url` with the value of every query parameter these credentials set replaced by
    /// `REDACTED`: for a URL of a record or a message that a server may have built from the
    /// URL it was sent (a redirect's `Location` echoing an API key).
    pub(crate) fn mask(&self, url: &str) -> Option<String> {
        if self.0.query.is_empty() {
            return None;
        }
        let mut parsed = Url::parse(url).ok()?;
        let names: Vec<&str> = self.0.query.iter().map(|(n, _)| n.as_str()).collect();
        rewrite_query(&mut parsed, &names, |name| Some(format!("{name}=REDACTED"))).then(|| parsed.into())
    }
}

/// The name of a query segment (`name=value`), decoded.
fn name_of(segment: &str) -> Option<std::borrow::Cow<'_, str>> {
    form_urlencoded::parse(segment.as_bytes()).next().map(|(name, _)| name)
}

/// Replaces the query segments of `url` whose name is one of `names` by what `with` says (or
/// drops them), keeping every other segment byte for byte. Whether any was found.
fn rewrite_query(url: &mut Url, names: &[&str], with: impl Fn(&str) -> Option<String>) -> bool {
    let Some(query) = url.query() else { return false };
    let hits = |segment: &str| name_of(segment).is_some_and(|name| names.contains(&name.as_ref()));
    if !query.split('&').any(hits) {
        return false;
    }
    let kept: Vec<String> = query
        .split('&')
        .filter_map(|segment| {
            if hits(segment) { with(&name_of(segment).unwrap_or_default()) } else { Some(segment.to_owned()) }
        })
        .collect();
    let query = kept.join("&");
    url.set_query((!query.is_empty()).then_some(query.as_str()));
    true
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.0.headers.iter().map(|(n, _)| n.as_str()).collect();
        let query: Vec<&str> = self.0.query.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Credentials")
            .field("headers", &headers)
            .field("query", &query)
            .field("version", &self.0.version)
            .finish_non_exhaustive()
    }
}

/// A host credentials may be sent to: a name or an address, and a port unless any will do
/// (`api.example.com`, `api.example.com:8443`, `127.0.0.1:8080`, `[::1]:8080`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthHost {
    host: String,
    port: Option<u16>,
}

impl AuthHost {
    /// The host and port of `url` (its scheme's default port when it names none).
    pub fn of(url: &Url) -> Option<AuthHost> {
        Some(AuthHost { host: url.host_str()?.to_ascii_lowercase(), port: url.port_or_known_default() })
    }

    /// Whether credentials for this host go to `url`.
    pub fn covers(&self, url: &Url) -> bool {
        url.host_str().is_some_and(|host| host.eq_ignore_ascii_case(&self.host))
            && self.port.is_none_or(|port| url.port_or_known_default() == Some(port))
    }
}

impl fmt::Display for AuthHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

impl FromStr for AuthHost {
    type Err = String;

    /// `HOST` or `HOST:PORT`, an IPv6 address in brackets.
    fn from_str(s: &str) -> Result<Self, String> {
        let url = Url::parse(&format!("http://{s}/"))
            .ok()
            .filter(|u| u.username().is_empty() && u.path() == "/" && u.query().is_none())
            .ok_or_else(|| format!("--auth-host {s:?}: expected HOST or HOST:PORT"))?;
        let host = url.host_str().ok_or_else(|| format!("--auth-host {s:?}: no host"))?;
        // `Url` leaves out port 80 of http: it was given all the same when the text names one.
        let port = url.port().or_else(|| s.rsplit_once(':').and_then(|(_, p)| p.parse().ok()));
        Ok(AuthHost { host: host.to_ascii_lowercase(), port })
    }
}

#[cfg(test)]
mod tests;
