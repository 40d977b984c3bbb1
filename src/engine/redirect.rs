//! Following redirects safely: http and https only, a hop limit, loop detection, the method rules
//! of RFC 9110, and credentials dropped whenever the origin changes.

use http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, HeaderValue,
    PROXY_AUTHORIZATION,
};
use http::{Method, StatusCode};
use url::Url;

use super::exchange::Hop;
use crate::request::quote;

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
    if followed >= max {
        return Err(format!("too many redirects (more than {max})"));
    }
    let location = location.to_str().map_err(|_| "redirect Location is not readable text".to_owned())?;
    if location.chars().any(char::is_control) {
        return Err(format!("redirect Location contains control characters: {}", quote(location)));
    }
    let next =
        hop.url.join(location).map_err(|e| format!("bad redirect Location {}: {e}", quote(location)))?;
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
        for name in [CONTENT_TYPE, CONTENT_LENGTH, CONTENT_ENCODING] {
            hop.headers.remove(name);
        }
    }
    Ok(hop)
}

/// Drops credentials when the new hop goes to another origin; once dropped they stay dropped.
pub(crate) fn strip_if_cross_origin(previous: &Url, hop: &mut Hop) {
    let same = previous.scheme() == hop.url.scheme()
        && previous.host_str() == hop.url.host_str()
        && previous.port_or_known_default() == hop.url.port_or_known_default();
    if !same {
        for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, HOST] {
            hop.headers.remove(name);
        }
    }
}
