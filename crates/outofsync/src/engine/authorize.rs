//! The driver's side of authentication: which hosts get the credentials of [`Config::auth`], and
//! the [`AuthClient`] a provider sends its token requests with.
//!
//! # The token endpoint goes through the engine's own transport
//!
//! Not a client of its own: the token endpoint then gets what every request gets — the TLS roots
//! or `--cacert`, `-k`, `--resolve`, HTTP/2, the timeouts and body limit, pooled connections —
//! with no second HTTP stack in the library, and the tests' scripted transport answers it on a
//! paused clock like any other exchange. It does go around the limits: requests hold their turn
//! while they wait for a token, so a token request queued behind them would wait forever.

use std::sync::OnceLock;

use http::Method;
use url::Url;

use super::config::Config;
use super::exchange::{Exchange, Exchanged, Hop, Response, Wire};
use super::failure::Failure;
use super::retry::{RetryCause, retry_after};
use crate::auth::{Auth, AuthClient, AuthError, AuthFuture, AuthHost, Credentials};
use crate::record::ErrorKind;
use crate::request::Input;

/// The provider of [`Config::auth`] and the hosts it is for.
pub(crate) struct Authorizer {
    provider: std::sync::Arc<dyn Auth>,
    hosts: Vec<AuthHost>,
    /// With no hosts given: the first request's, learnt as the input is read.
    first: OnceLock<Option<AuthHost>>,
}

impl Authorizer {
    pub fn new(config: &Config) -> Option<Self> {
        let provider = config.auth.clone()?;
        Some(Self { provider, hosts: config.auth_hosts.clone(), first: OnceLock::new() })
    }

    /// Learns the host of the first request from the input, in input order: called for each
    /// input as it is read, before any of them runs.
    pub fn learn(&self, input: &Input) {
        if !self.hosts.is_empty() || self.first.get().is_some() {
            return;
        }
        if let Input::Request(spec) | Input::Page { spec, .. } = input {
            _ = self.first.set(AuthHost::of(&spec.url));
        }
    }

    /// Whether credentials go to `url`.
    fn covers(&self, url: &Url) -> bool {
        if self.hosts.is_empty() {
            // Only a request run without its input read through `learn` (a test's) gets here first.
            return self.first.get_or_init(|| AuthHost::of(url)).as_ref().is_some_and(|h| h.covers(url));
        }
        self.hosts.iter().any(|host| host.covers(url))
    }

    /// The credentials for `url` (none when it is not a host of theirs); new ones in place of
    /// `refused` when given.
    pub async fn credentials<T: Exchange>(
        &self,
        url: &Url,
        refused: Option<&Credentials>,
        client: &Via<'_, T>,
    ) -> Result<Option<Credentials>, AuthError> {
        if !self.covers(url) {
            return Ok(None);
        }
        let credentials = match refused {
            Some(refused) => self.provider.refresh(refused, client).await?,
            None => self.provider.credentials(client).await?,
        };
        Ok(Some(credentials))
    }
}

/// The engine's transport as an [`AuthClient`]: one request at a time, each attempt within
/// `--timeout`, transient failures retried as requests are (`--retries`, backoff,
/// `Retry-After`) within `--deadline`. A redirect is not followed: a token endpoint that moved
/// is a setting to fix.
pub(crate) struct Via<'a, T> {
    pub transport: &'a T,
    pub config: &'a Config,
}

impl<T: Exchange> AuthClient for Via<'_, T> {
    fn send(&self, request: Hop) -> AuthFuture<'_, Result<Response, Failure>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + self.config.deadline;
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut wire = Wire::default();
                let exchange = self.transport.exchange(&request, &mut wire);
                let outcome =
                    tokio::time::timeout(self.config.timeout, exchange).await.unwrap_or_else(|_| {
                        Err(Failure::new(
                            ErrorKind::Timeout,
                            format!("no complete response within {:?} (--timeout)", self.config.timeout),
                        ))
                    });
                let failed = match &outcome {
                    Ok(Exchanged::Response(response)) if response.status.is_success() => None,
                    Ok(Exchanged::Response(response)) => Some(RetryCause::Status {
                        status: response.status.as_u16(),
                        retry_after: retry_after(&response.headers),
                    }),
                    Ok(Exchanged::Redirect { .. }) => None,
                    Err(failure) => Some(RetryCause::Error(failure.kind)),
                };
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                // A token request is safe to send again: at worst the server issues two tokens.
                let wait =
                    failed.and_then(|f| self.config.retry.decide(&Method::GET, attempt, f, left).retry);
                match (wait, outcome) {
                    (Some(wait), _) => tokio::time::sleep(wait).await,
                    (None, Ok(Exchanged::Response(response))) => return Ok(response),
                    (None, Ok(Exchanged::Redirect { status, location })) => {
                        let to = String::from_utf8_lossy(location.as_bytes()).into_owned();
                        return Err(Failure::new(
                            ErrorKind::Redirect,
                            format!(
                                "it answered {status} to {to}, which is not followed: give the URL it names"
                            ),
                        ));
                    }
                    (None, Err(failure)) if attempt > 1 => {
                        let message = format!("{} (after {attempt} attempts)", failure.message);
                        return Err(Failure::new(failure.kind, message));
                    }
                    (None, Err(failure)) => return Err(failure),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
