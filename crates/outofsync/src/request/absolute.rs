//! Absolute URLs, parsed once per origin rather than once per line.
//!
//! An input is usually thousands of URLs on a few hosts, and the `url` crate spends most of a
//! parse on the host (the IDNA mapping every host goes through, IP literals included). So each
//! thread — in practice the reader's, which parses every input line — remembers the
//! last origin it parsed, as written (`scheme://authority`), and parses a URL that starts with the
//! same text relative to it, which reads only the path and query. The result is the same `Url`:
//! for `http` and `https`, a path-absolute relative reference (`/` then neither `/` nor `\`) takes
//! scheme, user, password, host and port from its base and parses the rest exactly as the absolute
//! URL's path would be parsed. Any other shape takes the full parse.

use std::cell::RefCell;

use url::{ParseError, Url};

thread_local! {
    /// The origin last parsed on this thread, as written, and a URL with it.
    static LAST: RefCell<Option<(Box<str>, Url)>> = const { RefCell::new(None) };
}

/// Parses `raw` as an absolute URL, exactly as [`Url::parse`] does.
pub(crate) fn parse(raw: &str) -> Result<Url, ParseError> {
    let Some(end) = origin_end(raw) else { return Url::parse(raw) };
    let (origin, path) = raw.split_at(end);
    LAST.with_borrow_mut(|last| {
        if let Some((text, base)) = last.as_ref()
            && **text == *origin
        {
            return base.join(path);
        }
        let url = Url::parse(raw)?;
        *last = Some((origin.into(), url.clone()));
        Ok(url)
    })
}

/// Where the origin of `raw` ends, if it is `http://` or `https://` and an authority followed by a
/// path that a relative parse reads as the absolute one would: `/`, then neither `/` nor `\`.
fn origin_end(raw: &str) -> Option<usize> {
    let (scheme, after) = raw.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let start = scheme.len() + 3;
    let end = start + after.find(['/', '\\', '?', '#'])?;
    let bytes = raw.as_bytes();
    (bytes[end] == b'/' && !matches!(bytes.get(end + 1), Some(b'/' | b'\\'))).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every URL parses to what `Url::parse` makes of it, whether the origin is cached or not.
    #[test]
    fn the_same_url_as_a_full_parse_cached_or_not() {
        let urls = [
            "http://127.0.0.1:8080/json?id=1",
            "http://127.0.0.1:8080/json?id=2#frag",
            "http://127.0.0.1:8080/a/./b/../c/%2e%2E/d?x=%20y",
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080/ü/é?q=ü",
            "http://127.0.0.1:8080//double",
            "http://127.0.0.1:8080/\\back",
            "http://127.0.0.1:8080?q",
            "http://127.0.0.1:8080#f",
            "http://127.0.0.1:8080",
            "HTTP://Example.COM:80/x",
            "HTTP://Example.COM:80/y?z",
            "http://example.com:80/x",
            "https://user:pa%20ss@example.com:443/x",
            "https://user:pa%20ss@example.com:443/y",
            "http://[::1]:8080/v6",
            "http://[::1]:8080/v6/again",
            "http://0x7f.1/hex-ipv4",
            "http://0x7f.1/hex-ipv4/again",
            "http://xn--nxasmq6b.example/idna",
            "http://bücher.example/idna",
            "http://bücher.example/idna/again",
            "http://a\\b/backslash-authority",
            "ftp://example.com/x",
            "ftp://example.com/y",
            "mailto:someone@example.com",
            "http://example.com:99999/bad-port",
            "http://exa mple.com/bad-host",
            "http://example.com/a b",
            "http:/example.com/one-slash",
            "/relative",
            "",
        ];
        // Twice through, in order and reversed, so that every URL is seen both with its origin
        // cached and with another one cached.
        for url in urls.iter().chain(urls.iter().rev()).chain(urls.iter()) {
            let expected = Url::parse(url);
            assert_eq!(parse(url), expected, "{url}");
            if let Ok(expected) = expected {
                assert_eq!(parse(url).unwrap().as_str(), expected.as_str(), "{url}");
            }
        }
    }

    #[test]
    fn only_a_plain_path_after_an_http_origin_takes_the_short_way() {
        assert_eq!(origin_end("http://h:1/x"), Some(10));
        assert_eq!(origin_end("HTTPS://h/x"), Some(9));
        for raw in
            ["http://h", "http://h?x", "http://h//x", "http://h/\\x", "http://h\\x", "ftp://h/x", "h/x"]
        {
            assert_eq!(origin_end(raw), None, "{raw}");
        }
    }
}
