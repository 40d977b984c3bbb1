//! `--paginate`: walking a collection page by page, each page its own record.
//!
//! `link` follows `Link: <…>; rel="next"` (RFC 8288); `json:PATH` follows what the jq path `PATH`
//! finds in the body — a URL, or with `--page-param NAME` a cursor or page number set as that
//! query parameter on the first page's URL. The walk ends when there is no next page, at
//! `--max-pages`, on a failed page, or — never looping — when a next page was already fetched.

use std::str::FromStr;

use http::HeaderMap;
use http::header::LINK;
use jaq_json::Val;
use url::Url;

use super::filter::JqFilter;
use crate::request::ParseError;

/// How the next page is found.
#[derive(Clone, Debug)]
pub enum Paginate {
    /// The `Link` header's `rel="next"`.
    Link,
    /// A jq path into the JSON body.
    Json {
        /// The compiled path (`.next`, `.meta.next_cursor`, …).
        path: JqFilter,
        /// Set the value found as this query parameter of the first URL, instead of using it as
        /// a URL.
        param: Option<String>,
    },
}

impl FromStr for Paginate {
    type Err = ParseError;

    /// `link` or `json:PATH`.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.split_once(':') {
            _ if s == "link" => Ok(Paginate::Link),
            Some(("json", path)) => {
                let path = JqFilter::compile(path.trim())
                    .map_err(|e| ParseError(format!("--paginate json:{path}: {e}")))?;
                Ok(Paginate::Json { path, param: None })
            }
            _ => Err(ParseError(format!("--paginate {s:?}: expected link or json:PATH (e.g. json:.next)"))),
        }
    }
}

impl std::fmt::Display for Paginate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Paginate::Link => f.write_str("link"),
            Paginate::Json { path, param: None } => write!(f, "json:{}", path.source()),
            Paginate::Json { path, param: Some(p) } => write!(f, "json:{} --page-param {p}", path.source()),
        }
    }
}

impl Paginate {
    /// Uses the value found by a `json:` path as this query parameter (`--page-param`).
    #[must_use]
    pub fn with_param(self, name: Option<String>) -> Paginate {
        match self {
            Paginate::Json { path, .. } => Paginate::Json { path, param: name },
            link => link,
        }
    }

    /// The next page after a page fetched from `current` (whose walk began at `first`), from its
    /// headers and its JSON body (before any `--jq`).
    ///
    /// # Errors
    /// What was found is not usable as a next page (not a URL, a bad URL).
    pub fn next(
        &self,
        first: &Url,
        current: &Url,
        headers: &HeaderMap,
        json: Option<&str>,
    ) -> Result<Option<Url>, String> {
        match self {
            Paginate::Link => {
                let Some(target) =
                    headers.get_all(LINK).iter().filter_map(|v| v.to_str().ok()).find_map(next_link)
                else {
                    return Ok(None);
                };
                current
                    .join(&target)
                    .map(Some)
                    .map_err(|e| format!("the Link rel=\"next\" {target:?} is not a URL: {e}"))
            }
            Paginate::Json { path, param } => {
                let Some(json) = json else { return Ok(None) };
                let found = path.run(json)?.into_iter().next();
                let value = match found {
                    None | Some(Val::Null) | Some(Val::Bool(false)) => return Ok(None),
                    Some(v) => v,
                };
                let text = match &value {
                    Val::TStr(s) | Val::BStr(s) => String::from_utf8_lossy(s).into_owned(),
                    other => other.to_string(),
                };
                if text.is_empty() {
                    return Ok(None);
                }
                match param {
                    Some(name) => {
                        let mut next = first.clone();
                        let kept: Vec<(String, String)> = first
                            .query_pairs()
                            .filter(|(k, _)| k != name)
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect();
                        next.query_pairs_mut().clear().extend_pairs(kept).append_pair(name, &text);
                        Ok(Some(next))
                    }
                    None => current.join(&text).map(Some).map_err(|e| {
                        format!("the next page {} found by {} is not a URL: {e}", text, path.source())
                    }),
                }
            }
        }
    }
}

/// The target of `rel="next"` in one `Link` header value (which may list several links).
fn next_link(value: &str) -> Option<String> {
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>')? + open;
        let target = &rest[open + 1..close];
        let params_end = rest[close..].find(",").map_or(rest.len(), |n| n + close);
        let params = &rest[close + 1..params_end];
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=").is_some_and(|rel| {
                rel.trim_matches('"').split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target.to_owned());
        }
        rest = &rest[params_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn link_headers_name_the_next_page() {
        let mut headers = HeaderMap::new();
        let page = url("http://a.test/items?page=1");
        assert_eq!(Paginate::Link.next(&page, &page, &headers, None).unwrap(), None);
        headers.insert(
            LINK,
            HeaderValue::from_static(
                r#"<http://a.test/items?page=1>; rel="prev", </items?page=3>; rel="next last""#,
            ),
        );
        assert_eq!(
            Paginate::Link.next(&page, &page, &headers, None).unwrap(),
            Some(url("http://a.test/items?page=3"))
        );
        assert_eq!(next_link("<x>; rel=prev"), None);
    }

    #[test]
    fn json_paths_give_urls_or_cursors() {
        let first = url("http://a.test/items?per_page=10&cursor=old");
        let next: Paginate = "json:.next".parse().unwrap();
        let body = r#"{"next":"/items?page=2","cursor":"c2","n":3}"#;
        assert_eq!(
            next.next(&first, &first, &HeaderMap::new(), Some(body)).unwrap(),
            Some(url("http://a.test/items?page=2"))
        );
        assert_eq!(next.next(&first, &first, &HeaderMap::new(), Some(r#"{"next":null}"#)).unwrap(), None);
        assert_eq!(next.next(&first, &first, &HeaderMap::new(), Some("{}")).unwrap(), None);
        let cursor = "json:.cursor".parse::<Paginate>().unwrap().with_param(Some("cursor".into()));
        let later = url("http://a.test/items?per_page=10&cursor=c1");
        assert_eq!(
            cursor.next(&first, &later, &HeaderMap::new(), Some(body)).unwrap().unwrap().as_str(),
            "http://a.test/items?per_page=10&cursor=c2"
        );
        let number = "json:.n".parse::<Paginate>().unwrap().with_param(Some("page".into()));
        assert!(
            number
                .next(&first, &first, &HeaderMap::new(), Some(body))
                .unwrap()
                .unwrap()
                .as_str()
                .ends_with("&page=3")
        );
        assert!("json:.[".parse::<Paginate>().is_err());
        assert!("xml:/a".parse::<Paginate>().is_err());
    }
}
