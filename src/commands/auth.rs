//! `fetch`'s authentication flags (and `-u`) become the fetcher's [`Auth`] provider: secrets read
//! from the environment, every header set by one flag at most, and the hosts they go to.

use std::sync::Arc;

use anyhow::{Context, bail};
use outofsync::FetcherBuilder;
use outofsync::auth::{
    ApiKey, Auth, AuthHost, Basic, Bearer, ClientAuth, Combined, OAuth2, RefreshTokenFile,
};

use crate::cli::{AuthArgs, ClientAuthArg};

/// `builder` with the provider and the hosts of the flags; `user` is `-u`, `headers` the `-H`
/// lines (a header given both ways is refused: which one would go is not obvious).
pub fn configure(
    mut builder: FetcherBuilder,
    args: &AuthArgs,
    user: Option<&str>,
    headers: &[String],
) -> anyhow::Result<FetcherBuilder> {
    let authorization = || "header authorization".to_owned();
    let mut parts: Vec<Part> = Vec::new();
    if let Some(user) = user {
        let Some((name, password)) = user.split_once(':') else {
            // curl would prompt for the password; a bulk run has no one to ask.
            bail!("-u {user}: give USER:PASSWORD (outofsync does not prompt for a password)");
        };
        parts.push(Part::new("-u", authorization(), Basic::new(name, password).context("-u")?));
    }
    if let Some(vars) = &args.basic_env {
        let flag = format!("--basic-env {vars}");
        let (user_var, pass_var) =
            vars.split_once(':').with_context(|| format!("{flag}: give USER_VAR:PASS_VAR"))?;
        let basic = Basic::new(&env(&flag, user_var)?, &env(&flag, pass_var)?).context(flag.clone())?;
        parts.push(Part::new(flag, authorization(), basic));
    }
    if let Some(var) = &args.bearer_env {
        let flag = format!("--bearer-env {var}");
        let bearer = Bearer::new(&env(&flag, var)?).context(flag.clone())?;
        parts.push(Part::new(flag, authorization(), bearer));
    }
    for spec in &args.header_env {
        let flag = format!("--header-env '{spec}'");
        let (name, var) = spec.split_once(':').with_context(|| format!("{flag}: give 'NAME: VAR'"))?;
        let key = ApiKey::header(name.trim(), &env(&flag, var.trim())?).context(flag.clone())?;
        parts.push(Part::new(flag, format!("header {}", name.trim().to_ascii_lowercase()), key));
    }
    for spec in &args.api_key_query {
        let flag = format!("--api-key-query {spec}");
        let (name, var) = spec.split_once('=').with_context(|| format!("{flag}: give NAME=VAR"))?;
        if name.is_empty() {
            bail!("{flag}: the parameter has no name");
        }
        let key = ApiKey::query(name, &env(&flag, var)?);
        parts.push(Part::new(flag, format!("query parameter {name}"), key));
    }
    if let Some(url) = &args.oauth2_token_url {
        parts.push(Part::new("--oauth2-token-url", authorization(), oauth2(url, args)?));
    }
    refuse_overlaps(&parts, headers)?;
    let auth: Arc<dyn Auth> = match parts.len() {
        0 if args.auth_host.is_empty() => return Ok(builder),
        0 => bail!(
            "--auth-host names where credentials go, and none are given (--bearer-env, -u, --oauth2-token-url…)"
        ),
        1 => parts.remove(0).auth,
        _ => Arc::new(Combined::new(parts.into_iter().map(|part| part.auth).collect())?),
    };
    builder = builder.auth(auth);
    let mut hosts = args.auth_host.clone();
    if hosts.is_empty()
        && let Some(audience) = &args.oauth2_audience
        && let Some(host) = url::Url::parse(audience).ok().as_ref().and_then(AuthHost::of)
    {
        hosts.push(host);
    }
    for host in hosts {
        builder = builder.auth_host(host);
    }
    Ok(builder)
}

/// The OAuth2 provider of the `--oauth2-…` flags.
fn oauth2(url: &url::Url, args: &AuthArgs) -> anyhow::Result<OAuth2> {
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--oauth2-token-url {url}: only http and https");
    }
    let id = args.oauth2_client_id_env.as_ref().map(|var| env(&format!("--oauth2-client-id-env {var}"), var));
    let secret = args
        .oauth2_client_secret_env
        .as_ref()
        .map(|var| env(&format!("--oauth2-client-secret-env {var}"), var));
    let (id, secret) = (id.transpose()?, secret.transpose()?);
    let mut auth = match (&args.oauth2_refresh_token_file, &id, &secret) {
        (Some(file), _, _) => {
            let file = RefreshTokenFile::open(file).context("--oauth2-refresh-token-file")?;
            let auth = OAuth2::refresh_token(url.clone(), file);
            match &id {
                Some(id) => auth.client(id, secret.as_deref()),
                None => auth,
            }
        }
        (None, Some(id), Some(secret)) => OAuth2::client_credentials(url.clone(), id, secret),
        (None, _, _) => bail!(
            "--oauth2-token-url needs --oauth2-client-id-env and --oauth2-client-secret-env (the client \
             credentials grant), or --oauth2-refresh-token-file"
        ),
    };
    auth = auth.client_auth(match args.oauth2_client_auth {
        ClientAuthArg::Basic => ClientAuth::Basic,
        ClientAuthArg::Body => ClientAuth::Body,
    });
    if let Some(scope) = &args.oauth2_scope {
        auth = auth.scope(scope);
    }
    if let Some(audience) = &args.oauth2_audience {
        auth = auth.audience(audience);
    }
    Ok(auth)
}

/// Refuses two flags that set the same header or query parameter: `Authorization` from `-u` and
/// `--bearer-env`, say, or a header from a provider and from `-H`.
fn refuse_overlaps(parts: &[Part], headers: &[String]) -> anyhow::Result<()> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for part in parts {
        if let Some((_, other)) = seen.iter().find(|(sets, _)| *sets == part.sets) {
            bail!("{other} and {} both set {}: give one", part.flag, part.sets);
        }
        seen.push((&part.sets, &part.flag));
    }
    for header in headers {
        let name =
            format!("header {}", header.split(':').next().unwrap_or_default().trim().to_ascii_lowercase());
        if let Some((sets, flag)) = seen.iter().find(|(sets, _)| *sets == name) {
            bail!("-H {header:?} and {flag} both set the {sets}: give one");
        }
    }
    Ok(())
}

/// One provider, the flag that gave it and what it sets (`header authorization`, `query key`).
struct Part {
    flag: String,
    sets: String,
    auth: Arc<dyn Auth>,
}

impl Part {
    fn new(flag: impl Into<String>, sets: String, auth: impl Auth + 'static) -> Self {
        Self { flag: flag.into(), sets, auth: Arc::new(auth) }
    }
}

/// The value of the environment variable `var`, for `flag`.
fn env(flag: &str, var: &str) -> anyhow::Result<String> {
    match std::env::var(var) {
        Ok(value) if value.is_empty() => bail!("{flag}: the environment variable {var} is empty"),
        Ok(value) => Ok(value),
        Err(std::env::VarError::NotPresent) => bail!("{flag}: the environment variable {var} is not set"),
        Err(std::env::VarError::NotUnicode(_)) => {
            bail!("{flag}: the environment variable {var} is not UTF-8")
        }
    }
}
