//! Proxies, as curl uses them: one for every request (`--proxy URL`), or the environment's
//! `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (either case), with `--noproxy` for
//! the hosts that go direct.
//!
//! Which proxy a request takes, and the `NO_PROXY` rules (domains and their subdomains, IP
//! addresses and CIDR ranges, `*`), are hyper-util's proxy matcher, which follows curl. How a
//! request goes through it is the connector's (`tunnel`): a plain `http://` request is sent to an
//! HTTP proxy as it is, in absolute form; anything else through a `CONNECT` tunnel, or through
//! SOCKS5 (`socks5://` resolves the name here, `socks5h://` lets the proxy resolve it).
//!
//! Credentials in the proxy's URL (`http://user:pass@proxy:3128`) become `Proxy-Authorization`
//! (or SOCKS5's user and password); they appear in no record, message or log.

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};

/// Which proxy, if any, each request goes through. Default: none (the library reads no
/// environment unless asked: [`Proxies::from_env`]).
#[derive(Clone, Default)]
pub struct Proxies {
    matcher: Option<Arc<Matcher>>,
    /// What [`fmt::Debug`] shows: the proxy URLs, without credentials.
    shown: Arc<str>,
}

/// A proxy URL that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("proxy {shown}: {why}")]
pub struct ProxyError {
    shown: String,
    why: &'static str,
}

impl Proxies {
    /// No proxy: every request goes direct.
    pub fn none() -> Proxies {
        Proxies::default()
    }

    /// Every request through `proxy` (`http://`, `https://`, `socks5://` or `socks5h://`; no
    /// scheme means `http://`), but those to the hosts of `no_proxy` (curl's `--noproxy` list:
    /// comma-separated domains, IP addresses, CIDR ranges, or `*`).
    ///
    /// # Errors
    /// `proxy` is not a URL, or names a scheme that is no proxy.
    pub fn all(proxy: &str, no_proxy: Option<&str>) -> Result<Proxies, ProxyError> {
        check(proxy)?;
        if no_proxy.is_some_and(bypasses_all) {
            return Ok(Proxies::none());
        }
        let builder = Matcher::builder().all(proxy.to_owned()).no(no_proxy.unwrap_or_default().to_owned());
        Ok(Proxies { matcher: Some(Arc::new(builder.build())), shown: without_credentials(proxy).into() })
    }

    /// The proxies the environment names, as curl reads them: `https_proxy` or `HTTPS_PROXY`
    /// for `https://` requests, `http_proxy` or `HTTP_PROXY` for `http://` ones, `all_proxy` or
    /// `ALL_PROXY` for both, and `no_proxy` or `NO_PROXY` for the hosts that go direct
    /// (`no_proxy` given here replaces the environment's). Under CGI (`REQUEST_METHOD` set),
    /// `HTTP_PROXY` is ignored: a request's `Proxy:` header would set it ("httpoxy").
    pub fn from_env(no_proxy: Option<&str>) -> Proxies {
        let get = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok()).unwrap_or_default();
        let cgi = std::env::var_os("REQUEST_METHOD").is_some();
        let http = if cgi { get(&["http_proxy"]) } else { get(&["http_proxy", "HTTP_PROXY"]) };
        let https = get(&["https_proxy", "HTTPS_PROXY"]);
        let all = get(&["all_proxy", "ALL_PROXY"]);
        let no = no_proxy.map_or_else(|| get(&["no_proxy", "NO_PROXY"]), str::to_owned);
        if (http.is_empty() && https.is_empty() && all.is_empty()) || bypasses_all(&no) {
            return Proxies::none();
        }
        let shown = [("http", &http), ("https", &https), ("all", &all)]
            .iter()
            .filter(|(_, url)| !url.is_empty())
            .map(|(which, url)| format!("{which}: {}", without_credentials(url)))
            .collect::<Vec<_>>()
            .join(", ");
        let matcher = Matcher::builder().http(http).https(https).all(all).no(no).build();
        Proxies { matcher: Some(Arc::new(matcher)), shown: shown.into() }
    }

    /// Whether any request may go through a proxy.
    pub fn is_none(&self) -> bool {
        self.matcher.is_none()
    }

    /// The proxy of a request to `scheme://host:port`, if it takes one.
    pub(crate) fn route(&self, scheme: &str, host: &str, port: u16) -> Option<Route> {
        let matcher = self.matcher.as_ref()?;
        let dst: http::Uri = format!("{scheme}://{host}:{port}").parse().ok()?;
        matcher.intercept(&dst).and_then(|intercept| Route::of(&intercept))
    }
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.matcher {
            None => f.write_str("Proxies(none)"),
            Some(_) => write!(f, "Proxies({})", self.shown),
        }
    }
}

/// How a request reaches its proxy, and how it goes through.
#[derive(Clone)]
pub(crate) struct Route {
    pub kind: Kind,
    /// The proxy's host (as a URL writes it) and port.
    pub host: String,
    pub port: u16,
    /// `Proxy-Authorization` for an HTTP proxy, marked sensitive.
    pub authorization: Option<HeaderValue>,
    /// User and password for SOCKS5.
    pub credentials: Option<(String, String)>,
}

/// The kinds of proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// HTTP, reached over plain TCP or TLS.
    Http { tls: bool },
    /// SOCKS5; with `remote_dns` the proxy resolves the name (`socks5h://`).
    Socks5 { remote_dns: bool },
}

/// Without the credentials.
impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route").field("kind", &self.kind).field("proxy", &self.name()).finish_non_exhaustive()
    }
}

impl Route {
    fn of(intercept: &Intercept) -> Option<Route> {
        let uri = intercept.uri();
        let kind = match uri.scheme_str()? {
            "http" => Kind::Http { tls: false },
            "https" => Kind::Http { tls: true },
            "socks5" => Kind::Socks5 { remote_dns: false },
            "socks5h" => Kind::Socks5 { remote_dns: true },
            _ => return None, // SOCKS4 is not spoken: `check` refuses it up front
        };
        let default_port = match kind {
            Kind::Http { tls: false } => 80,
            Kind::Http { tls: true } => 443,
            Kind::Socks5 { .. } => 1080,
        };
        let authorization = intercept.basic_auth().cloned().map(|mut value| {
            value.set_sensitive(true);
            value
        });
        let credentials = intercept.raw_auth().map(|(user, pass)| (user.to_owned(), pass.to_owned()));
        Some(Route {
            kind,
            host: uri.host()?.to_owned(),
            port: uri.port_u16().unwrap_or(default_port),
            authorization,
            credentials,
        })
    }

    /// The proxy as messages name it: `127.0.0.1:3128`, never with its credentials.
    pub fn name(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Whether a plain `http://` request goes to the proxy as it is (absolute form), rather
    /// than through a tunnel.
    pub fn forwards_http(&self) -> bool {
        matches!(self.kind, Kind::Http { .. })
    }
}

/// Whether a no-proxy list holds `*`, which in curl sends every host direct (the matcher applies
/// `*` to names only, not to addresses).
fn bypasses_all(no_proxy: &str) -> bool {
    no_proxy.split(',').any(|entry| entry.trim() == "*")
}

/// Refuses what the matcher would silently pass over: a URL it cannot read, a scheme no proxy
/// speaks.
fn check(proxy: &str) -> Result<(), ProxyError> {
    let refuse = |why| Err(ProxyError { shown: without_credentials(proxy), why });
    let Ok(uri) = proxy.parse::<http::Uri>() else { return refuse("not a URL") };
    match uri.scheme_str() {
        None | Some("http" | "https" | "socks5" | "socks5h") => {}
        Some("socks4" | "socks4a") => return refuse("SOCKS4 is not supported: use socks5:// or socks5h://"),
        Some(_) => return refuse("the scheme must be http, https, socks5 or socks5h"),
    }
    if uri.host().is_none_or(str::is_empty) {
        return refuse("it names no host");
    }
    Ok(())
}

/// `proxy` with any `user:password@` taken out, for messages.
fn without_credentials(proxy: &str) -> String {
    match proxy.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => proxy.to_owned(),
        },
        None => proxy.rsplit_once('@').map_or_else(|| proxy.to_owned(), |(_, host)| host.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_for_all_but_the_hosts_that_go_direct() {
        let proxies =
            Proxies::all("http://ann:s3cret@127.0.0.1:3128", Some("internal.test,10.0.0.0/8")).unwrap();
        let route = proxies.route("https", "api.test", 443).expect("through the proxy");
        assert_eq!((route.kind, route.name()), (Kind::Http { tls: false }, "127.0.0.1:3128".to_owned()));
        assert_eq!(route.authorization.unwrap().to_str().unwrap(), "Basic YW5uOnMzY3JldA==");
        assert!(proxies.route("http", "a.internal.test", 80).is_none(), "a subdomain of a no-proxy domain");
        assert!(proxies.route("http", "10.1.2.3", 80).is_none(), "inside a no-proxy range");
        assert!(!format!("{proxies:?}").contains("s3cret"), "{proxies:?}");
        let socks = Proxies::all("socks5h://u:p@proxy.test", None).unwrap();
        let route = socks.route("http", "a.test", 80).unwrap();
        assert_eq!((route.kind, route.port), (Kind::Socks5 { remote_dns: true }, 1080));
        assert_eq!(route.credentials, Some(("u".to_owned(), "p".to_owned())));
        assert!(Proxies::none().route("http", "a.test", 80).is_none());
    }

    #[test]
    fn proxies_that_cannot_work_are_refused_without_showing_credentials() {
        for (proxy, says) in
            [("ftp://a:b@proxy.test", "scheme"), ("socks4://proxy.test", "SOCKS4"), ("http://", "not a URL")]
        {
            let e = Proxies::all(proxy, None).expect_err(proxy).to_string();
            assert!(e.contains(says) && !e.contains("a:b"), "{proxy}: {e}");
        }
    }
}
