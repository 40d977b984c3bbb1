//! [`OAuth2`]: bearer tokens from a token endpoint (RFC 6749), by the client credentials grant or
//! a refresh token, shared by every request and refreshed before they expire.
//!
//! # One token request at a time
//!
//! The token is behind a plain mutex, held for a look only: a request that finds a token fresh
//! enough takes it and goes. One that does not queues on the *flight* lock (tokio's, fair); the
//! first in line fetches while holding it, and every one after looks again once it has the lock:
//! the token (or the failure) that the one before got is theirs too. So 500 requests that find
//! the token stale, or are refused with it, together cause one token request. Should the request
//! holding the flight be cancelled, its fetch is dropped with it and the next in line fetches. A
//! request that finds the token only due for replacement, still valid, while another fetches the
//! next one, goes with it rather than wait.
//!
//! # When tokens are fetched
//!
//! A token with an `expires_in` is replaced once a fifth of its life is left (at most a minute
//! before it expires), so that no request goes out with one about to expire; one without is kept
//! until a server refuses it. When the endpoint fails, a token still valid is used until it
//! expires, and the failure is handed to every request that asks meanwhile without asking the
//! endpoint again: for a second when it may pass (no answer, 5xx, 429), for the rest of the run
//! when it will not (another 4xx, such as `invalid_client` or `invalid_grant`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use http::{HeaderMap, Method};
use serde_json::Value;
use tokio::time::Instant;
use url::{Position, Url};

use super::{Auth, AuthClient, AuthError, AuthFuture, Credentials, Hop, RefreshTokenFile, Response};

/// The largest part of a token's life left when it is replaced: a fifth of it, at most this.
const MAX_MARGIN: Duration = Duration::from_secs(60);
/// How long a failure that may pass is handed out before the endpoint is asked again.
const TRANSIENT_HOLD: Duration = Duration::from_secs(1);
/// The most of an error body quoted in a message.
const MAX_DETAIL: usize = 300;

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (form-encoded first), which every server must
    /// accept. The default.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the request body.
    Body,
}

/// Bearer tokens from an OAuth2 token endpoint.
///
/// # Examples
///
/// ```
/// use outofsync::auth::OAuth2;
///
/// let token_url = "https://auth.example.com/oauth/token".parse()?;
/// let auth = OAuth2::client_credentials(token_url, "my-client", "its-secret").scope("read:orders");
/// let fetcher = outofsync::Fetcher::builder().auth(auth).auth_host("api.example.com".parse()?).build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OAuth2 {
    token_url: Url,
    grant: Grant,
    client: Option<Client>,
    client_auth: ClientAuth,
    scope: Option<String>,
    audience: Option<String>,
    state: Mutex<State>,
    /// Held by the one request fetching a token; see the module documentation.
    flight: tokio::sync::Mutex<()>,
}

enum Grant {
    ClientCredentials,
    RefreshToken(Arc<RefreshTokenFile>),
}

struct Client {
    id: String,
    secret: Option<String>,
}

#[derive(Default)]
struct State {
    /// Token requests ended so far; a token's version is the number of the request that got it.
    generation: u64,
    token: Option<Token>,
    failure: Option<Held>,
}

struct Token {
    credentials: Credentials,
    refresh_at: Option<Instant>,
    expires_at: Option<Instant>,
}

/// A failure handed out until `until` (`None`: for the rest of the run).
#[derive(Clone)]
struct Held {
    error: AuthError,
    until: Option<Instant>,
}

impl OAuth2 {
    /// Tokens by the client credentials grant, the client authenticated with its id and secret.
    pub fn client_credentials(token_url: Url, client_id: &str, client_secret: &str) -> Self {
        Self::new(token_url, Grant::ClientCredentials).client(client_id, Some(client_secret))
    }

    /// Tokens by the refresh token grant, with the refresh token of `file`; when the server
    /// rotates it, the new one is saved there before it is used (see [`RefreshTokenFile`]).
    /// A confidential client also needs [`OAuth2::client`].
    pub fn refresh_token(token_url: Url, file: RefreshTokenFile) -> Self {
        Self::new(token_url, Grant::RefreshToken(Arc::new(file)))
    }

    fn new(token_url: Url, grant: Grant) -> Self {
        Self {
            token_url,
            grant,
            client: None,
            client_auth: ClientAuth::default(),
            scope: None,
            audience: None,
            state: Mutex::default(),
            flight: tokio::sync::Mutex::new(()),
        }
    }

    /// The client id, and its secret for a confidential client (a public one sends its id only,
    /// in the body).
    #[must_use]
    pub fn client(mut self, id: &str, secret: Option<&str>) -> Self {
        self.client = Some(Client { id: id.to_owned(), secret: secret.map(str::to_owned) });
        self
    }

    /// How the client id and secret are sent. Default: [`ClientAuth::Basic`].
    #[must_use]
    pub fn client_auth(mut self, how: ClientAuth) -> Self {
        self.client_auth = how;
        self
    }

    /// The `scope` asked for. Default: none (the server's default).
    #[must_use]
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.to_owned());
        self
    }

    /// The `audience` asked for (an extension many servers take: Auth0, Okta…). Default: none.
    #[must_use]
    pub fn audience(mut self, audience: &str) -> Self {
        self.audience = Some(audience.to_owned());
        self
    }

    /// The token endpoint, for messages: without its query, which might hold a secret.
    fn endpoint(&self) -> &str {
        &self.token_url[..Position::AfterPath]
    }

    fn grant_name(&self) -> &'static str {
        match self.grant {
            Grant::ClientCredentials => "client_credentials",
            Grant::RefreshToken(_) => "refresh_token",
        }
    }

    /// What is held, if it may be handed out now to a request that was refused with the
    /// credentials of version `refused`.
    fn usable(&self, now: Instant, refused: Option<u64>) -> Option<Result<Credentials, AuthError>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let held = state.failure.as_ref().filter(|h| h.until.is_none_or(|until| now < until));
        if let Some(token) = &state.token
            && refused != Some(token.credentials.version())
        {
            let fresh = token.refresh_at.is_none_or(|at| now < at);
            let valid = token.expires_at.is_none_or(|at| now < at);
            if fresh || (held.is_some() && valid) {
                return Some(Ok(token.credentials.clone()));
            }
        }
        held.map(|h| Err(h.error.clone()))
    }

    /// The token held, if it has not expired and is not the refused one.
    fn valid(&self, now: Instant, refused: Option<u64>) -> Option<Credentials> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let token = state.token.as_ref()?;
        let valid =
            refused != Some(token.credentials.version()) && token.expires_at.is_none_or(|at| now < at);
        valid.then(|| token.credentials.clone())
    }

    /// Credentials to send now; see the module documentation.
    async fn obtain(&self, client: &dyn AuthClient, refused: Option<u64>) -> Result<Credentials, AuthError> {
        if let Some(ready) = self.usable(Instant::now(), refused) {
            return ready;
        }
        // A token due for replacement but still valid goes out while another request fetches
        // the next one: nobody waits for a refresh that is not needed yet.
        let _flight = match self.flight.try_lock() {
            Ok(flight) => flight,
            Err(_) => match self.valid(Instant::now(), refused) {
                Some(credentials) => return Ok(credentials),
                None => self.flight.lock().await,
            },
        };
        // Whoever held the flight before may have fetched, or failed, for this request too.
        if let Some(ready) = self.usable(Instant::now(), refused) {
            return ready;
        }
        let version = self.state.lock().unwrap_or_else(|e| e.into_inner()).generation + 1;
        let outcome = self.fetch(client, version).await;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.generation = version;
        match outcome {
            Ok(token) => {
                let credentials = token.credentials.clone();
                (state.token, state.failure) = (Some(token), None);
                Ok(credentials)
            }
            Err(held) => {
                let error = held.error.clone();
                state.failure = Some(held);
                drop(state);
                self.usable(Instant::now(), refused).unwrap_or(Err(error))
            }
        }
    }

    /// The token request: its grant, scope, audience and client authentication.
    fn token_request(&self, refresh_token: Option<&str>) -> Hop {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", self.grant_name());
        if let Some(token) = refresh_token {
            form.append_pair("refresh_token", token);
        }
        if let Some(scope) = &self.scope {
            form.append_pair("scope", scope);
        }
        if let Some(audience) = &self.audience {
            form.append_pair("audience", audience);
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers
            .insert(USER_AGENT, HeaderValue::from_static(concat!("outofsync/", env!("CARGO_PKG_VERSION"))));
        match (&self.client, self.client_auth) {
            (Some(Client { id, secret: Some(secret) }), ClientAuth::Basic) => {
                // RFC 6749 §2.3.1: both form-encoded before they are joined.
                let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", encode(id), encode(secret));
                let basic = base64::engine::general_purpose::STANDARD.encode(pair);
                if let Ok(mut value) = HeaderValue::from_str(&format!("Basic {basic}")) {
                    value.set_sensitive(true);
                    headers.insert(AUTHORIZATION, value);
                }
            }
            (Some(Client { id, secret }), _) => {
                form.append_pair("client_id", id);
                if let Some(secret) = secret {
                    form.append_pair("client_secret", secret);
                }
            }
            (None, _) => {}
        }
        Hop {
            method: Method::POST,
            url: self.token_url.clone(),
            headers: Arc::new(headers),
            body: Some(Bytes::from(form.finish())),
        }
    }

    /// Asks the token endpoint for a token of version `version`; saves a rotated refresh token
    /// before handing the token out.
    async fn fetch(&self, client: &dyn AuthClient, version: u64) -> Result<Token, Held> {
        let presented = match &self.grant {
            Grant::RefreshToken(file) => Some(file.token()),
            Grant::ClientCredentials => None,
        };
        let sent = Instant::now();
        let response = client.send(self.token_request(presented.as_deref())).await.map_err(|failure| {
            self.transient(format!(
                "the token endpoint {} failed: {}: {}",
                self.endpoint(),
                failure.kind,
                failure.message
            ))
        })?;
        let took = sent.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            target: "outofsync::wire",
            "POST {} (the token endpoint, grant {}) {} in {took:.1} ms",
            self.endpoint(), self.grant_name(), response.status
        );
        if !response.status.is_success() {
            return Err(self.refused(&response, presented.as_deref()));
        }
        let answer = Answer::parse(&response.body).map_err(|why| {
            self.transient(format!(
                "the token endpoint {} answered {} but {why}",
                self.endpoint(),
                response.status
            ))
        })?;
        if let Some(kind) = answer.token_type.as_deref().filter(|t| !t.eq_ignore_ascii_case("bearer")) {
            return Err(self.permanent(format!(
                "the token endpoint {} gave a token of type {kind:?}; only bearer tokens can be sent",
                self.endpoint()
            )));
        }
        if let (Grant::RefreshToken(file), Some(new)) = (&self.grant, answer.refresh_token)
            && Some(&new) != presented.as_ref()
        {
            let saving = file.clone();
            let saved = tokio::task::spawn_blocking(move || saving.store(&new))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            if let Err(e) = saved {
                return Err(self.permanent(format!(
                    "the token endpoint rotated the refresh token and the new one cannot be saved to {} ({e}); \
                     no token is used until it is, so that the file keeps the one to present next",
                    file.path().display()
                )));
            }
        }
        let credentials = Credentials::bearer(&answer.access_token)
            .map_err(|_| {
                self.permanent(format!(
                    "the token endpoint {} gave an access token that cannot be sent in a header",
                    self.endpoint()
                ))
            })?
            .with_version(version);
        let life = answer.expires_in.filter(|s| *s > 0).map(Duration::from_secs);
        match life {
            Some(life) => tracing::debug!(target: "outofsync::wire", "the new token is good for {life:?}"),
            None => {
                tracing::debug!(target: "outofsync::wire", "the new token has no expires_in: kept until refused")
            }
        }
        Ok(Token {
            credentials,
            // Counted from when the request went out: the server's clock started no earlier.
            refresh_at: life.map(|life| sent + life - (life / 5).min(MAX_MARGIN)),
            expires_at: life.map(|life| sent + life),
        })
    }

    /// A non-2xx answer of the token endpoint, with its `error` and `error_description`.
    fn refused(&self, response: &Response, presented: Option<&str>) -> Held {
        let status = response.status;
        let detail = match serde_json::from_slice::<Value>(&response.body) {
            Ok(doc) if doc["error"].is_string() => {
                let mut detail = doc["error"].as_str().unwrap_or_default().to_owned();
                if let Some(description) = doc["error_description"].as_str() {
                    detail = format!("{detail} ({description})");
                }
                detail
            }
            _ => String::from_utf8_lossy(&response.body).trim().to_owned(),
        };
        let mut detail: String =
            detail.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_DETAIL).collect();
        // A server may quote what it was sent; none of it goes into a record.
        let secrets = [self.client.as_ref().and_then(|c| c.secret.as_deref()), presented];
        for secret in secrets.into_iter().flatten().filter(|s| s.len() >= 4) {
            detail = detail.replace(secret, "(secret)");
        }
        let reason = status.canonical_reason().unwrap_or_default();
        let mut message =
            format!("the token endpoint {} answered {} {reason}", self.endpoint(), status.as_u16());
        if !detail.is_empty() {
            message = format!("{message}: {detail}");
        }
        let passes = !status.is_client_error() || matches!(status.as_u16(), 408 | 429);
        if passes { self.transient(message) } else { self.permanent(message) }
    }

    fn transient(&self, message: String) -> Held {
        Held { error: AuthError::new(message), until: Some(Instant::now() + TRANSIENT_HOLD) }
    }

    fn permanent(&self, message: String) -> Held {
        Held { error: AuthError::new(message), until: None }
    }
}

/// What a token endpoint answers (RFC 6749 §5.1).
struct Answer {
    access_token: String,
    token_type: Option<String>,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
}

impl Answer {
    fn parse(body: &[u8]) -> Result<Answer, String> {
        let doc: Value = serde_json::from_slice(body).map_err(|e| format!("its body is not JSON ({e})"))?;
        let text = |name: &str| doc.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        let access_token = text("access_token").ok_or("without an access_token")?.to_owned();
        // Some servers write the number as a string.
        let expires_in = match doc.get("expires_in") {
            Some(Value::Number(n)) => n.as_f64().filter(|s| *s >= 0.0).map(|s| s as u64),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        Ok(Answer {
            access_token,
            token_type: text("token_type").map(str::to_owned),
            expires_in,
            refresh_token: text("refresh_token").map(str::to_owned),
        })
    }
}

impl Auth for OAuth2 {
    fn credentials<'a>(
        &'a self,
        client: &'a dyn AuthClient,
    ) -> AuthFuture<'a, Result<Credentials, AuthError>> {
        Box::pin(self.obtain(client, None))
    }

    fn refreshes(&self) -> bool {
        true
    }

    fn refresh<'a>(
        &'a self,
        refused: &'a Credentials,
        client: &'a dyn AuthClient,
    ) -> AuthFuture<'a, Result<Credentials, AuthError>> {
        Box::pin(self.obtain(client, Some(refused.version())))
    }

    fn describe(&self) -> String {
        let client = self.client.as_ref().map(|c| c.id.as_str());
        format!(
            "oauth2 {} {} client {client:?} scope {:?} audience {:?}",
            self.grant_name(),
            self.token_url,
            self.scope,
            self.audience
        )
    }
}

impl std::fmt::Debug for OAuth2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2")
            .field("token_url", &self.endpoint())
            .field("grant", &self.grant_name())
            .field("client_id", &self.client.as_ref().map(|c| &c.id))
            .field("client_auth", &self.client_auth)
            .field("scope", &self.scope)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}
