//! The authentication flags of `outofsync fetch` (beside `-u`, which curl users expect among the
//! request flags). Secrets are named by the environment variable that holds them, never given on
//! the command line, where the shell's history and the process list would keep them.

use std::path::PathBuf;

use clap::Args;
use outofsync::auth::AuthHost;

/// Authentication: credentials read from the environment, sent only to the hosts they are for.
#[derive(Args, Debug, Default)]
pub struct AuthArgs {
    /// Send `Authorization: Bearer TOKEN`, TOKEN read from the environment variable VAR.
    #[arg(long, value_name = "VAR", help_heading = "Authentication")]
    pub bearer_env: Option<String>,
    /// Send a header whose value is read from an environment variable: 'X-Api-Key: VAR'
    /// (repeatable).
    #[arg(long, value_name = "NAME: VAR", help_heading = "Authentication")]
    pub header_env: Vec<String>,
    /// Add the query parameter NAME, its value read from the environment variable VAR, to every
    /// request on the wire (never to the URL its record or -v shows; repeatable).
    #[arg(long, value_name = "NAME=VAR", help_heading = "Authentication")]
    pub api_key_query: Vec<String>,
    /// Basic authentication with the user and the password read from these two environment
    /// variables.
    #[arg(long, value_name = "USER_VAR:PASS_VAR", help_heading = "Authentication")]
    pub basic_env: Option<String>,
    /// OAuth2: get bearer tokens from this token endpoint (client credentials, or with
    /// --oauth2-refresh-token-file a refresh token). A token is shared by every request, replaced
    /// before it expires, and replaced at once when a request is refused with 401 (that request is
    /// then sent once more; not a retry). When no token can be had, requests fail as `auth`,
    /// unsent.
    #[arg(long, value_name = "URL", help_heading = "Authentication")]
    pub oauth2_token_url: Option<url::Url>,
    /// OAuth2: the environment variable holding the client id.
    #[arg(long, value_name = "VAR", requires = "oauth2_token_url", help_heading = "Authentication")]
    pub oauth2_client_id_env: Option<String>,
    /// OAuth2: the environment variable holding the client secret.
    #[arg(long, value_name = "VAR", requires = "oauth2_client_id_env", help_heading = "Authentication")]
    pub oauth2_client_secret_env: Option<String>,
    /// OAuth2: how the client id and secret go to the token endpoint: basic (an Authorization
    /// header) or body (client_id and client_secret in the form).
    #[arg(
        long,
        value_name = "HOW",
        default_value = "basic",
        value_enum,
        requires = "oauth2_token_url",
        help_heading = "Authentication"
    )]
    pub oauth2_client_auth: ClientAuthArg,
    /// OAuth2: the scope to ask for.
    #[arg(long, value_name = "SCOPE", requires = "oauth2_token_url", help_heading = "Authentication")]
    pub oauth2_scope: Option<String>,
    /// OAuth2: the audience to ask for; a URL here also names the host that gets the tokens
    /// (unless --auth-host).
    #[arg(long, value_name = "AUDIENCE", requires = "oauth2_token_url", help_heading = "Authentication")]
    pub oauth2_audience: Option<String>,
    /// OAuth2: use the refresh token held in FILE. When the server rotates it, the new one is
    /// written to FILE (a temporary file, synced, renamed over it) before it is used, so a crash
    /// at any moment leaves FILE holding a token the server takes.
    #[arg(long, value_name = "FILE", requires = "oauth2_token_url", help_heading = "Authentication")]
    pub oauth2_refresh_token_file: Option<PathBuf>,
    /// Send credentials to HOST (or HOST:PORT) only (repeatable) [default: the host and port of
    /// the first request, or of the --oauth2-audience URL]. A redirect to another scheme, host or
    /// port never carries them.
    #[arg(long, value_name = "HOST[:PORT]", help_heading = "Authentication")]
    pub auth_host: Vec<AuthHost>,
}

/// `--oauth2-client-auth`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuthArg {
    /// An `Authorization: Basic` header (RFC 6749 §2.3.1; every server must take it).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form.
    Body,
}
