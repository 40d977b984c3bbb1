//! Following redirects safely: http and https only, a hop limit, loop detection, the method rules
//! of RFC 9110, and credentials dropped whenever the origin changes.

use std::sync::Arc;

use http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, HeaderName, HeaderValue,
    PROXY_AUTHORIZATION,
};
use http::{HeaderMap, Method, StatusCode};
use url::Url;

use super::exchange::Hop;
use crate::request::{MAX_URL_LEN, quote};

/// Where a redirect response sends the request next, or why it cannot be followed.
pub(crate) fn next_hop(
    hop: &Hop,
    status: StatusCode,
    location: &HeaderValue,
    followed: u32,
    max: u32,
    https_only: bool,
    visited: &mut Vec<Url>,
) -> Result<Hop, String> {
    if visited.is_empty() {
        visited.push(hop.url.clone());
    }
    if followed >= max {
        return Err(format!("too many redirects (more than {max})"));
    }
    let location = location.to_str().map_err(|_| "redirect Location is not readable text".to_owned())?;
    if location.chars().any(char::is_control) {
        return Err(format!("redirect Location contains control characters: {}", quote(location)));
    }
    let next =
        hop.url.join(location).map_err(|e| format!("bad redirect Location {}: {e}", quote(location)))?;
    if next.as_str().len() > MAX_URL_LEN {
        return Err(format!(
            "redirect to a URL of {} bytes, over the limit of {MAX_URL_LEN}: {}",
            next.as_str().len(),
            quote(next.as_str())
        ));
    }
    match next.scheme() {
        "http" | "https" => {}
        scheme => {
            return Err(format!(
                "refused redirect to {scheme}: URL {} (only http and https)",
                quote(next.as_str())
            ));
        }
    }
    if https_only && hop.url.scheme() == "https" && next.scheme() == "http" {
        return Err(format!("refused redirect from https to http ({}) because of --https-only", next));
    }
    if visited.contains(&next) {
        return Err(format!("redirect loop: {next} was already visited"));
    }
    visited.push(next.clone());

    let mut hop = Hop { url: next, ..hop.clone() };
    // 303 turns anything but HEAD into GET; 301 and 302 turn POST into GET (what every client
    // does); 307 and 308 keep the method and body.
    let to_get = match status.as_u16() {
        303 => hop.method != Method::HEAD,
        301 | 302 => hop.method == Method::POST,
        _ => false,
    };
    if to_get {
        hop.method = Method::GET;
        hop.body = None;
        remove(&mut hop.headers, [CONTENT_TYPE, CONTENT_LENGTH, CONTENT_ENCODING]);
    }
    Ok(hop)
}

/// Drops credentials when the new hop goes to another origin; once dropped they stay dropped.
/// Whether it does (the request's [`Auth`](crate::auth) credentials then stop too).
pub(crate) fn strip_if_cross_origin(previous: &Url, hop: &mut Hop) -> bool {
    let same = previous.scheme() == hop.url.scheme()
        && previous.host_str() == hop.url.host_str()
        && previous.port_or_known_default() == hop.url.port_or_known_default();
    if !same {
        remove(&mut hop.headers, [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, HOST]);
    }
    !same
}

/// Removes `names` from headers that may be shared with other requests, copying them only when
/// one of the names is there.
fn remove<const N: usize>(headers: &mut Arc<HeaderMap>, names: [HeaderName; N]) {
    if names.iter().any(|name| headers.contains_key(name)) {
        let headers = Arc::make_mut(headers);
        for name in names {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(method: Method, url: &str) -> Hop {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            (AUTHORIZATION, "Bearer t"),
            (COOKIE, "a=1"),
            (PROXY_AUTHORIZATION, "Basic x"),
            (CONTENT_TYPE, "application/json"),
            (HeaderName::from_static("x-trace"), "1"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        Hop { method, url: Url::parse(url).unwrap(), headers: headers.into(), body: Some("{}".into()) }
    }

    fn follow(from: &Hop, status: u16, location: &str) -> Result<Hop, String> {
        let location = HeaderValue::from_str(location).unwrap();
        next_hop(
            from,
            StatusCode::from_u16(status).unwrap(),
            &location,
            0,
            10,
            true,
            &mut vec![from.url.clone()],
        )
    }

    #[test]
    fn only_http_and_https_locations_are_followed() {
        let from = hop(Method::GET, "https://a.test/x");
        assert_eq!(follow(&from, 302, "/y").unwrap().url.as_str(), "https://a.test/y");
        assert_eq!(follow(&from, 302, "https://b.test/").unwrap().url.as_str(), "https://b.test/");
        for (location, says) in [
            ("file:///etc/passwd", "refused redirect to file"),
            ("gopher://a.test/", "refused redirect to gopher"),
            ("data:text/plain,hi", "refused redirect to data"),
            ("http://a.test/", "from https to http"),
            ("/x", "redirect loop"),
            ("http://[::1", "bad redirect Location"),
        ] {
            let message = follow(&from, 302, location).unwrap_err();
            assert!(message.contains(says), "{location}: {message}");
        }
        let long = format!("/{}", "a".repeat(MAX_URL_LEN));
        assert!(follow(&from, 302, &long).unwrap_err().contains("over the limit"));
        let location = HeaderValue::from_static("/next");
        let spent = next_hop(&from, StatusCode::FOUND, &location, 3, 3, false, &mut vec![]);
        assert_eq!(spent.unwrap_err(), "too many redirects (more than 3)");
    }

    #[test]
    fn methods_change_as_rfc_9110_says() {
        for (method, status, after, keeps_body) in [
            (Method::POST, 301, Method::GET, false),
            (Method::POST, 302, Method::GET, false),
            (Method::POST, 303, Method::GET, false),
            (Method::PUT, 303, Method::GET, false),
            (Method::HEAD, 303, Method::HEAD, true),
            (Method::PUT, 302, Method::PUT, true),
            (Method::POST, 307, Method::POST, true),
            (Method::POST, 308, Method::POST, true),
        ] {
            let next = follow(&hop(method.clone(), "http://a.test/"), status, "/next").unwrap();
            assert_eq!(next.method, after, "{method} after {status}");
            assert_eq!(next.body.is_some(), keeps_body, "{method} after {status}");
            assert_eq!(next.headers.contains_key(CONTENT_TYPE), keeps_body, "{method} after {status}");
        }
    }

    #[test]
    fn credentials_go_only_to_the_same_scheme_host_and_port() {
        let credentials = [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION];
        let from = Url::parse("http://a.test/x").unwrap();
        for (to, same) in [
            ("http://a.test:80/y", true),
            ("http://A.TEST/y", true),
            ("https://a.test/y", false),
            ("http://a.test:8080/y", false),
            ("http://b.test/y", false),
            ("http://sub.a.test/y", false),
        ] {
            let mut next = hop(Method::GET, to);
            strip_if_cross_origin(&from, &mut next);
            for name in &credentials {
                assert_eq!(next.headers.contains_key(name), same, "{name} to {to}");
            }
            assert!(next.headers.contains_key("x-trace"), "other headers stay ({to})");
        }
    }
}
