//! Providers of fixed credentials — [`Bearer`], [`Basic`], [`ApiKey`] — and [`Combined`], which
//! sends the credentials of several providers together.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;

use super::{Auth, AuthClient, AuthError, AuthFuture, Credentials};

/// Hands out `credentials`, which never change.
fn fixed(credentials: &Credentials) -> AuthFuture<'_, Result<Credentials, AuthError>> {
    Box::pin(std::future::ready(Ok(credentials.clone())))
}

/// `Authorization: Bearer TOKEN`, the same token for the whole run (`--bearer-env VAR`).
pub struct Bearer {
    credentials: Credentials,
}

impl Bearer {
    /// A bearer token.
    ///
    /// # Errors
    /// The token cannot go into a header (control characters).
    pub fn new(token: &str) -> Result<Self, AuthError> {
        Ok(Self { credentials: Credentials::bearer(token)? })
    }
}

impl Auth for Bearer {
    fn credentials<'a>(&'a self, _: &'a dyn AuthClient) -> AuthFuture<'a, Result<Credentials, AuthError>> {
        fixed(&self.credentials)
    }

    fn describe(&self) -> String {
        "bearer".into()
    }
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bearer(..)")
    }
}

/// `Authorization: Basic …` of a user and a password (`-u USER:PASSWORD`, `--basic-env U:P`).
pub struct Basic {
    user: String,
    credentials: Credentials,
}

impl Basic {
    /// Basic authentication as `user` with `password`.
    ///
    /// # Errors
    /// The user name holds a colon, which Basic authentication cannot carry (RFC 7617).
    pub fn new(user: &str, password: &str) -> Result<Self, AuthError> {
        if user.contains(':') {
            return Err(AuthError::new("a Basic user name cannot hold a colon (RFC 7617)"));
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let credentials =
            Credentials::new().header(http::header::AUTHORIZATION, &format!("Basic {encoded}"))?;
        Ok(Self { user: user.to_owned(), credentials })
    }
}

impl Auth for Basic {
    fn credentials<'a>(&'a self, _: &'a dyn AuthClient) -> AuthFuture<'a, Result<Credentials, AuthError>> {
        fixed(&self.credentials)
    }

    /// The user, not the password: a resume as another user is refused, one after the password
    /// changed is not.
    fn describe(&self) -> String {
        format!("basic user {:?}", self.user)
    }
}

impl fmt::Debug for Basic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Basic").field("user", &self.user).finish_non_exhaustive()
    }
}

/// An API key in a header (`--header-env 'X-Api-Key: VAR'`) or a query parameter
/// (`--api-key-query NAME=VAR`).
pub struct ApiKey {
    what: String,
    credentials: Credentials,
}

impl ApiKey {
    /// The header `name: key`.
    ///
    /// # Errors
    /// `name` is not a header name, or `key` cannot go into a header.
    pub fn header(name: &str, key: &str) -> Result<Self, AuthError> {
        let credentials = Credentials::new().header(name, key)?;
        let name = credentials.headers().next().map(|(n, _)| n.to_string()).unwrap_or_default();
        Ok(Self { what: format!("header {name}"), credentials })
    }

    /// The query parameter `name=key`, added to the URL of each request on the wire (never to
    /// the URL its record shows).
    pub fn query(name: &str, key: &str) -> Self {
        Self { what: format!("query {name}"), credentials: Credentials::new().query(name, key) }
    }
}

impl Auth for ApiKey {
    fn credentials<'a>(&'a self, _: &'a dyn AuthClient) -> AuthFuture<'a, Result<Credentials, AuthError>> {
        fixed(&self.credentials)
    }

    fn describe(&self) -> String {
        format!("api key in {}", self.what)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey").field("in", &self.what).finish_non_exhaustive()
    }
}

/// The credentials of several providers sent together (an API key beside an OAuth2 token, say);
/// where two set the same header or parameter, the later one wins.
#[derive(Debug)]
pub struct Combined {
    parts: Vec<Arc<dyn Auth>>,
}

impl Combined {
    /// All of `parts`, of which at most one [refreshes](Auth::refreshes): the version of the
    /// credentials is that one's, so that its [`Auth::refresh`] can tell stale ones.
    ///
    /// # Errors
    /// More than one part refreshes.
    pub fn new(parts: Vec<Arc<dyn Auth>>) -> Result<Self, AuthError> {
        if parts.iter().filter(|p| p.refreshes()).count() > 1 {
            return Err(AuthError::new("at most one of the combined providers may refresh its credentials"));
        }
        Ok(Self { parts })
    }

    async fn gather(
        &self,
        client: &dyn AuthClient,
        refused: Option<&Credentials>,
    ) -> Result<Credentials, AuthError> {
        let mut all = Credentials::new();
        for part in &self.parts {
            let credentials = match refused {
                Some(refused) if part.refreshes() => part.refresh(refused, client).await?,
                _ => part.credentials(client).await?,
            };
            all = all.merge(&credentials);
        }
        Ok(all)
    }
}

impl Auth for Combined {
    fn credentials<'a>(
        &'a self,
        client: &'a dyn AuthClient,
    ) -> AuthFuture<'a, Result<Credentials, AuthError>> {
        Box::pin(self.gather(client, None))
    }

    fn refreshes(&self) -> bool {
        self.parts.iter().any(|p| p.refreshes())
    }

    fn refresh<'a>(
        &'a self,
        refused: &'a Credentials,
        client: &'a dyn AuthClient,
    ) -> AuthFuture<'a, Result<Credentials, AuthError>> {
        Box::pin(self.gather(client, Some(refused)))
    }

    fn describe(&self) -> String {
        self.parts.iter().map(|p| p.describe()).collect::<Vec<_>>().join(" + ")
    }
}
