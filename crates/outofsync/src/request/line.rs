//! One input line: a plain URL (globs expanded), a JSON request object, a comment or nothing.

use bytes::Bytes;
use http::Method;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Map, Value};

use super::glob::{Glob, GlobIter};
use super::{
    InvalidInput, RequestSpec, parse_header_line, parse_header_pair, parse_method, parse_url, quote,
};

/// What the command line says about requests whose line does not say it.
#[derive(Clone, Debug, Default)]
pub struct LineDefaults {
    /// The method (default: `POST` when there is a body, else `GET`).
    pub method: Option<Method>,
    /// The body (`-d`/`--json`).
    pub body: Option<Bytes>,
    /// Headers that come with that body (`Content-Type` for `--json`).
    pub body_headers: HeaderMap,
    /// Expand curl-style globs in plain URLs (default on; `--globoff` turns it off).
    pub no_globs: bool,
    /// Input lines are data rows that fill templates, not requests (`--url-template`).
    pub rows: Option<Rows>,
}

/// Data rows and the templates they fill.
#[derive(Clone, Debug)]
pub struct Rows {
    /// How rows are written.
    pub format: RowFormat,
    /// What a row becomes.
    pub templates: std::sync::Arc<super::template::RowTemplates>,
}

/// How data rows are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowFormat {
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header row naming the fields.
    Csv,
}

/// Parses line number `line` of JSON rows into a request.
pub fn parse_row_line(text: &str, line: u64, defaults: &LineDefaults, rows: &Rows) -> Parsed {
    let text = text.strip_suffix('\r').unwrap_or(text).trim_matches(|c| c == ' ' || c == '\t');
    if text.is_empty() || text.starts_with('#') {
        return Parsed::Skip;
    }
    let row = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(row)) => row,
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                _ => "not an object",
            };
            return Parsed::Invalid(
                InvalidInput::new(format!("a row must be a JSON object, this is {kind}")).at_line(line),
            );
        }
        Err(e) => return Parsed::Invalid(InvalidInput::new(format!("bad JSON row: {e}")).at_line(line)),
    };
    row_request(row, line, defaults, rows)
}

/// The request a parsed row makes.
pub fn row_request(row: Map<String, Value>, line: u64, defaults: &LineDefaults, rows: &Rows) -> Parsed {
    match rows.templates.request(row, defaults) {
        Ok(mut spec) => {
            spec.line = Some(line);
            Parsed::One(Box::new(spec))
        }
        Err(invalid) => Parsed::Invalid(invalid.at_line(line)),
    }
}

impl LineDefaults {
    fn method(&self, has_body: bool) -> Method {
        self.method.clone().unwrap_or(if has_body { Method::POST } else { Method::GET })
    }
}

/// What a line turned into.
#[derive(Debug)]
pub enum Parsed {
    /// A blank line or a `#` comment: not a request.
    Skip,
    /// One request.
    One(Box<RequestSpec>),
    /// Several requests from a glob; expanded into its requests by `expand` (below).
    Glob(Glob),
    /// A line that could not become a request.
    Invalid(InvalidInput),
}

/// Parses line number `line` (from 1); `None` for text that is not from a file (a URL argument).
pub fn parse_line(text: &str, line: Option<u64>, defaults: &LineDefaults) -> Parsed {
    match parse(text, defaults) {
        Parsed::One(mut spec) => {
            spec.line = line;
            Parsed::One(spec)
        }
        Parsed::Invalid(invalid) => Parsed::Invalid(at(invalid, line)),
        other => other,
    }
}

fn at(invalid: InvalidInput, line: Option<u64>) -> InvalidInput {
    match line {
        Some(line) => invalid.at_line(line),
        None => invalid,
    }
}

fn parse(text: &str, defaults: &LineDefaults) -> Parsed {
    // A CR before the LF is the line ending of a CRLF file; any other CR is refused later.
    let text = text.strip_suffix('\r').unwrap_or(text);
    let text = text.trim_matches(|c| c == ' ' || c == '\t');
    if text.is_empty() || text.starts_with('#') {
        return Parsed::Skip;
    }
    let parsed = if text.starts_with('{') {
        parse_object(text, defaults).map(|s| Parsed::One(Box::new(s)))
    } else if defaults.no_globs || !text.contains(['[', '{']) {
        plain(text, defaults).map(|s| Parsed::One(Box::new(s)))
    } else {
        Glob::parse(text).map_err(InvalidInput::new).and_then(|glob| {
            // A glob that turns out literal (an IPv6 address, say) is one plain request.
            if glob.len() == 1 {
                plain(&glob.iter().next().expect("one expansion"), defaults).map(|s| Parsed::One(Box::new(s)))
            } else {
                Ok(Parsed::Glob(glob))
            }
        })
    };
    parsed.unwrap_or_else(Parsed::Invalid)
}

/// The requests of a glob line, one per expansion.
pub struct Expansions<'a> {
    urls: GlobIter,
    line: Option<u64>,
    defaults: &'a LineDefaults,
}

impl Iterator for Expansions<'_> {
    type Item = Result<RequestSpec, InvalidInput>;

    fn next(&mut self) -> Option<Self::Item> {
        let url = self.urls.next()?;
        Some(match plain(&url, self.defaults) {
            Ok(mut spec) => {
                spec.line = self.line;
                Ok(spec)
            }
            Err(invalid) => Err(at(invalid, self.line)),
        })
    }
}

/// The requests of a glob line.
pub fn expand(glob: Glob, line: Option<u64>, defaults: &LineDefaults) -> Expansions<'_> {
    Expansions { urls: glob.into_iter(), line, defaults }
}

fn plain(url: &str, defaults: &LineDefaults) -> Result<RequestSpec, InvalidInput> {
    let mut spec = RequestSpec::new(defaults.method(defaults.body.is_some()), url)?;
    spec.body = defaults.body.clone();
    spec.headers = defaults.body_headers.clone();
    Ok(spec)
}

/// `{"url":…,"method":…,"headers":{…}|["K: V"],"body":"…","json":…,"id":…, …}`; other fields
/// go to `meta`.
fn parse_object(text: &str, defaults: &LineDefaults) -> Result<RequestSpec, InvalidInput> {
    let mut object: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| InvalidInput::new(format!("bad JSON request object: {e}")))?;
    let url = match object.remove("url") {
        Some(Value::String(url)) => url,
        Some(other) => return Err(InvalidInput::new(format!("\"url\" must be a string, got {other}"))),
        None => return Err(InvalidInput::new("JSON request object has no \"url\"")),
    };
    let url = parse_url(&url).map_err(InvalidInput::new)?;

    let mut headers = HeaderMap::new();
    match object.remove("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let Value::String(value) = value else {
                    return Err(InvalidInput::new(format!(
                        "header {} must have a string value",
                        quote(&name)
                    )));
                };
                let (name, value) = parse_header_pair(&name, &value).map_err(InvalidInput::new)?;
                headers.append(name, value);
            }
        }
        Some(Value::Array(lines)) => {
            for line in lines {
                let Value::String(line) = line else {
                    return Err(InvalidInput::new("\"headers\" as a list must hold \"Name: value\" strings"));
                };
                let (name, value) = parse_header_line(&line).map_err(InvalidInput::new)?;
                headers.append(name, value);
            }
        }
        Some(other) => {
            return Err(InvalidInput::new(format!("\"headers\" must be an object or a list, got {other}")));
        }
    }

    let body = match (object.remove("body"), object.remove("json")) {
        (Some(_), Some(_)) => return Err(InvalidInput::new("give \"body\" or \"json\", not both")),
        (Some(Value::String(body)), None) => Some(Bytes::from(body)),
        (Some(Value::Null), None) | (None, None) => None,
        (Some(other), None) => {
            return Err(InvalidInput::new(format!(
                "\"body\" must be a string (use \"json\" for a JSON body), got {}",
                quote(&other.to_string())
            )));
        }
        (None, Some(json)) => {
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Some(Bytes::from(json.to_string()))
        }
    };
    let (body, headers) = match body {
        Some(body) => (Some(body), headers),
        None => {
            let mut merged = defaults.body_headers.clone();
            merged.extend(headers);
            (defaults.body.clone(), merged)
        }
    };
    let method = match object.remove("method") {
        None | Some(Value::Null) => defaults.method(body.is_some()),
        Some(Value::String(m)) => parse_method(&m).map_err(InvalidInput::new)?,
        Some(other) => return Err(InvalidInput::new(format!("\"method\" must be a string, got {other}"))),
    };
    let id =
        object.remove("id").map(|v| serde_json::value::to_raw_value(&v).expect("a JSON value serialises"));
    let meta = (!object.is_empty())
        .then(|| serde_json::value::to_raw_value(&object).expect("a JSON object serialises"));
    Ok(RequestSpec { method, url, headers, body, id, meta, line: None })
}

/// How many inputs a line yields (0 for blanks and comments), without building requests: what the
/// progress bar's total is made of. Agrees with [`parse_line`] line by line.
pub fn count_line(text: &str, defaults: &LineDefaults) -> u64 {
    let text = text.strip_suffix('\r').unwrap_or(text);
    let text = text.trim_matches(|c| c == ' ' || c == '\t');
    if text.is_empty() || text.starts_with('#') {
        0
    } else if text.starts_with('{') || defaults.no_globs || !text.contains(['[', '{']) {
        1
    } else {
        Glob::parse(text).map_or(1, |g| g.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> RequestSpec {
        match parse_line(text, Some(7), &LineDefaults::default()) {
            Parsed::One(spec) => *spec,
            other => panic!("expected one request, got {other:?}"),
        }
    }

    fn invalid(text: &str) -> String {
        match parse_line(text, Some(7), &LineDefaults::default()) {
            Parsed::Invalid(invalid) => {
                assert_eq!(invalid.line, Some(7));
                invalid.message
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn plain_urls_comments_and_blanks() {
        assert_eq!(one("  http://a.test/x \r").url.as_str(), "http://a.test/x");
        assert!(matches!(parse_line("", Some(1), &LineDefaults::default()), Parsed::Skip));
        assert!(matches!(parse_line("   # comment", Some(1), &LineDefaults::default()), Parsed::Skip));
        assert_eq!(one("http://[::1]:8080/json").url.port(), Some(8080));
    }

    #[test]
    fn control_characters_are_refused_not_stripped() {
        assert!(invalid("http://a.test/x\ry").contains("carriage return"));
        assert!(invalid("http://a.test/\tx").contains("tab"));
        assert!(invalid("http://a.test/\u{7f}").contains("U+007F"));
        // C1 controls, two bytes in UTF-8 (0xC2 0x80-0x9F); 0xC2 also starts U+00A0-U+00BF.
        assert!(invalid("http://a.test/\u{85}").contains("U+0085"));
        assert!(invalid("http://a.test/é\u{9f}").contains("U+009F"));
        assert_eq!(one("http://a.test/\u{a0}é").url.as_str(), "http://a.test/%C2%A0%C3%A9");
        assert!(invalid(r#"{"url":"http://a.test/\nx"}"#).contains("line feed"));
        assert!(
            invalid(r#"{"url":"http://a.test/","headers":{"X":"a\r\nB: c"}}"#).contains("carriage return")
        );
        assert!(invalid("/relative").starts_with("line 7: relative URL without a base"));
        assert!(invalid("ftp://a.test/").contains("unsupported scheme"));
        assert!(invalid(r#"{"url":"http://a.test/","method":"GE T"}"#).contains("bad method"));
        assert!(invalid(r#"{"url": 5"#).contains("bad JSON"));
    }

    #[test]
    fn json_objects_carry_id_and_meta() {
        let spec = one(r#"{"url":"http://a.test/","method":"put","json":{"a":1},"id":42,"team":"x"}"#);
        assert_eq!(spec.method, Method::PUT);
        assert_eq!(spec.body.as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(spec.headers[CONTENT_TYPE], "application/json");
        assert_eq!(spec.id.unwrap().get(), "42");
        assert_eq!(spec.meta.unwrap().get(), r#"{"team":"x"}"#);
        assert_eq!(spec.line, Some(7));
    }

    #[test]
    fn globs_expand_with_the_line_number() {
        let Parsed::Glob(glob) = parse_line("http://a.test/[1-3]", Some(4), &LineDefaults::default()) else {
            panic!("a glob")
        };
        let defaults = LineDefaults::default();
        assert_eq!(count_line("http://a.test/[1-3]", &defaults), 3);
        assert_eq!(count_line("# no", &defaults), 0);
        let specs: Vec<_> = expand(glob, Some(4), &defaults).map(Result::unwrap).collect();
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[2].url.as_str(), "http://a.test/3");
        assert!(specs.iter().all(|s| s.line == Some(4)));
    }
}
