//! Requests built from data rows: `--url-template`, `--header-template`, `--body-template` and
//! `--json-template`, filled from JSONL objects or CSV rows.
//!
//! A placeholder is `{field}` (`{a.b}` reaches into a nested object); any other brace is literal
//! text, so a JSON body template is written as plain JSON. Values are percent-encoded in URLs, inserted as they are in headers and raw bodies,
//! and inserted as JSON (strings quoted) in JSON bodies. A missing field is an
//! `invalid_request` naming the line and the field; fields no template uses travel to the record's
//! `meta`, and a field named `id` becomes the record's `id`, so results join back to their rows.

use std::collections::HashSet;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use super::{InvalidInput, LineDefaults, RequestSpec, parse_header_pair, parse_url, quote};

/// Everything but RFC 3986's unreserved characters is encoded: safe in a path segment and in a
/// query value alike.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A text with `{field}` placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(String),
}

/// How a value is written into a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// Percent-encoded (URLs).
    Url,
    /// As it is (headers, raw bodies); control characters in headers are still refused.
    Raw,
    /// As JSON: strings quoted and escaped, numbers and objects as they are (JSON bodies).
    Json,
}

impl Template {
    /// Parses a template: `{name}` (a name of letters, digits, `_`, `-` and `.`) is a
    /// placeholder; every other brace is literal text, so JSON templates need no escaping.
    ///
    /// # Errors
    /// Never for now; kept fallible so that stricter syntax can come without breaking callers.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
                .unwrap_or(after.len());
            let name = &after[..name_len];
            let starts_well = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            if starts_well && after[name_len..].starts_with('}') {
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Field(name.to_owned()));
                rest = &after[name_len + 1..];
            } else {
                literal.push('{');
                rest = after;
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// The fields the template uses.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Fills the template from `row`.
    ///
    /// # Errors
    /// The name of the first field the row lacks.
    pub fn render(&self, row: &Map<String, Value>, escape: Escape) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(name) => {
                    let value = lookup(row, name).ok_or_else(|| name.clone())?;
                    match escape {
                        Escape::Json => out.push_str(&value.to_string()),
                        Escape::Url => out.extend(utf8_percent_encode(&plain(value), COMPONENT)),
                        Escape::Raw => out.push_str(&plain(value)),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `text` with every `{name}` filled with `value`, escaped for where it goes; every other brace,
/// placeholders of other names included, is left as it is (a curl glob `{a,b}` in a URL stays
/// one). This is how a run's own variables (`{cursor}`) reach the URLs, headers and bodies given
/// on the command line.
pub fn fill(text: &str, name: &str, value: &Value, escape: Escape) -> String {
    let template = Template::parse(text).expect("templates always parse");
    let mut out = String::with_capacity(text.len());
    for part in &template.parts {
        match part {
            Part::Literal(literal) => out.push_str(literal),
            Part::Field(field) if field == name => match escape {
                Escape::Json => out.push_str(&value.to_string()),
                Escape::Url => out.extend(utf8_percent_encode(&plain(value), COMPONENT)),
                Escape::Raw => out.push_str(&plain(value)),
            },
            Part::Field(field) => {
                out.push('{');
                out.push_str(field);
                out.push('}');
            }
        }
    }
    out
}

/// `a.b.c` looks into nested objects; a key that itself holds dots is found first.
fn lookup<'a>(row: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(value) = row.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut value = row.get(parts.next()?)?;
    for part in parts {
        value = match value {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// A value as text: strings as they are, null as nothing, anything else as JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The templates of a run, and what they make of a row.
#[derive(Clone, Debug)]
pub struct RowTemplates {
    source: String,
    url: Template,
    headers: Vec<(HeaderName, Template)>,
    body: Option<(Template, Escape)>,
    used: HashSet<String>,
}

impl RowTemplates {
    /// Parses the templates: a URL, `Name: value` header templates, and at most one body template
    /// (raw, or JSON when `json_body`).
    ///
    /// # Errors
    /// A template does not parse, or a header template has a bad name.
    pub fn new(url: &str, headers: &[String], body: Option<(&str, bool)>) -> Result<RowTemplates, String> {
        let source = serde_json::json!({ "url": url, "headers": headers, "body": body }).to_string();
        let url = Template::parse(url)?;
        let headers = headers
            .iter()
            .map(|h| {
                let (name, value) = h.split_once(':').ok_or_else(|| {
                    format!("header template {} is not of the form \"Name: value\"", quote(h))
                })?;
                let name = HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| format!("bad header name in template {}", quote(h)))?;
                Ok((name, Template::parse(value.trim())?))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let body = body
            .map(|(text, json)| {
                Template::parse(text).map(|t| (t, if json { Escape::Json } else { Escape::Raw }))
            })
            .transpose()?;
        let mut used = HashSet::new();
        let all =
            std::iter::once(&url).chain(headers.iter().map(|(_, t)| t)).chain(body.iter().map(|(t, _)| t));
        for template in all {
            // A nested field `a.b` uses the whole of `a`.
            used.extend(template.fields().map(|f| f.split('.').next().unwrap_or(f).to_owned()));
        }
        Ok(RowTemplates { source, url, headers, body, used })
    }

    /// The templates as given, in one text (what a resume compares).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The request a row makes.
    ///
    /// # Errors
    /// A missing field (named), or a URL or header that is not valid once filled.
    pub fn request(
        &self,
        mut row: Map<String, Value>,
        defaults: &LineDefaults,
    ) -> Result<RequestSpec, InvalidInput> {
        fn missing(use_: &'static str) -> impl Fn(String) -> InvalidInput {
            move |field| InvalidInput::new(format!("field {} is missing (used by {use_})", quote(&field)))
        }
        let url = self.url.render(&row, Escape::Url).map_err(missing("--url-template"))?;
        let url = parse_url(&url).map_err(InvalidInput::new)?;
        let mut headers = HeaderMap::new();
        for (name, template) in &self.headers {
            let value = template.render(&row, Escape::Raw).map_err(missing("--header-template"))?;
            let (name, value) = parse_header_pair(name.as_str(), &value).map_err(InvalidInput::new)?;
            headers.append(name, value);
        }
        let body = match &self.body {
            Some((template, escape)) => {
                let use_ = if *escape == Escape::Json { "--json-template" } else { "--body-template" };
                let text = template.render(&row, *escape).map_err(missing(use_))?;
                if *escape == Escape::Json {
                    serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|e| {
                        InvalidInput::new(format!("--json-template does not make JSON for this row: {e}"))
                    })?;
                    if !headers.contains_key(CONTENT_TYPE) {
                        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    }
                }
                Some(Bytes::from(text))
            }
            None => {
                for (name, value) in &defaults.body_headers {
                    headers.entry(name).or_insert_with(|| value.clone());
                }
                defaults.body.clone()
            }
        };
        let method: Method =
            defaults.method.clone().unwrap_or(if body.is_some() { Method::POST } else { Method::GET });
        let id = row.remove("id").map(|v| serde_json::value::to_raw_value(&v).expect("JSON serialises"));
        row.retain(|k, _| !self.used.contains(k));
        let meta = (!row.is_empty()).then(|| serde_json::value::to_raw_value(&row).expect("JSON serialises"));
        Ok(RequestSpec { method, url, headers, body, id, meta, line: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn fields_are_filled_and_escaped_for_where_they_go() {
        let t = Template::parse("http://h.test/users/{id}?q={q}&x={ lit}").unwrap();
        let r = row(json!({"id": 7, "q": "a b&c/é"}));
        assert_eq!(t.render(&r, Escape::Url).unwrap(), "http://h.test/users/7?q=a%20b%26c%2F%C3%A9&x={ lit}");
        let t = Template::parse(r#"{"name": {name}, "deep": {"n": {user.n}}}"#).unwrap();
        assert_eq!(t.fields().collect::<Vec<_>>(), ["name", "user.n"]);
        let r = row(json!({"name": "O\"Brien", "user": {"n": 3}}));
        assert_eq!(t.render(&r, Escape::Json).unwrap(), r#"{"name": "O\"Brien", "deep": {"n": 3}}"#);
        assert_eq!(t.render(&row(json!({"name": 1})), Escape::Json).unwrap_err(), "user.n");
        let t = Template::parse("{open and a}b and {} and {1x}").unwrap();
        assert_eq!(t.fields().count(), 0, "only {{name}} is a placeholder");
    }

    #[test]
    fn unused_fields_go_to_meta_and_id_to_the_record() {
        let t = RowTemplates::new("http://h.test/u/{id}", &["X-Team: {team}".into()], None).unwrap();
        let spec = t
            .request(row(json!({"id": "u1", "team": "blue", "region": "eu"})), &LineDefaults::default())
            .unwrap();
        assert_eq!(spec.url.as_str(), "http://h.test/u/u1");
        assert_eq!(spec.headers["x-team"], "blue");
        assert_eq!(spec.id.unwrap().get(), r#""u1""#);
        assert_eq!(spec.meta.unwrap().get(), r#"{"region":"eu"}"#);
        let err = t.request(row(json!({"id": "u1"})), &LineDefaults::default()).unwrap_err();
        assert!(err.message.contains("\"team\"") && err.message.contains("--header-template"), "{err}");
        let t = RowTemplates::new("http://h.test/{a}", &[], Some((r#"{"v": {v}}"#, true))).unwrap();
        let spec = t.request(row(json!({"a": "x", "v": [1, 2]})), &LineDefaults::default()).unwrap();
        assert_eq!(spec.method, Method::POST);
        assert_eq!(spec.body.as_deref(), Some(&br#"{"v": [1,2]}"#[..]));
        assert_eq!(spec.headers[CONTENT_TYPE], "application/json");
    }
}

#[cfg(test)]
mod fill_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_run_variable_fills_its_placeholder_only() {
        let t = "http://h.test/c?since={cursor}&x={a,b}&y={other}";
        assert_eq!(
            fill(t, "cursor", &json!("2026-01-01T00:00:00+02:00"), Escape::Url),
            "http://h.test/c?since=2026-01-01T00%3A00%3A00%2B02%3A00&x={a,b}&y={other}"
        );
        assert_eq!(fill(r#"{"after": {cursor}}"#, "cursor", &json!(5), Escape::Json), r#"{"after": 5}"#);
        assert_eq!(fill("X-Since: {cursor}", "cursor", &json!("T1"), Escape::Raw), "X-Since: T1");
    }
}
