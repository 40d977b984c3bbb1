//! What goes in: [`RequestSpec`] (a valid request), [`InvalidInput`] (a line that could not become one)
//! and the readers that turn files, stdin and command-line URLs into a lazy stream of [`Input`].
//!
//! Validation happens here, before anything is parsed leniently: control characters in a URL or a
//! header are refused, never stripped (the `url` crate would silently drop a tab or a newline).

mod absolute;
pub mod glob;
mod line;
pub mod reader;
pub mod template;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use serde_json::value::RawValue;
use url::Url;

pub use line::{LineDefaults, Parsed, RowFormat, Rows, parse_line};
pub use reader::{Reader, Source};
pub use template::RowTemplates;

/// Why a value — a URL, a method, a rate, a status list, a mode — could not be read: a message
/// that names the problem and quotes (a bounded prefix of) the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub(crate) String);

impl ParseError {
    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl From<ParseError> for String {
    fn from(e: ParseError) -> String {
        e.0
    }
}

/// The longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 64 * 1024;

/// One valid request, ready to send.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    /// The method.
    pub method: Method,
    /// The URL: absolute, `http` or `https`.
    pub url: Url,
    /// Headers of this request; they replace the fetcher's default headers of the same name.
    pub headers: HeaderMap,
    /// The body, if any.
    pub body: Option<Bytes>,
    /// A user `id` carried into the record.
    pub id: Option<Box<RawValue>>,
    /// Other input fields carried into the record under `meta`.
    pub meta: Option<Box<RawValue>>,
    /// The input line this request came from (from 1), for the record.
    pub line: Option<u64>,
}

impl RequestSpec {
    /// A request with `method` to `url`.
    ///
    /// # Errors
    /// The URL is not an absolute `http`/`https` URL, is over [`MAX_URL_LEN`], or holds whitespace
    /// or control characters.
    pub fn new(method: Method, url: &str) -> Result<Self, InvalidInput> {
        Ok(Self {
            method,
            url: parse_url(url).map_err(InvalidInput::new)?,
            headers: HeaderMap::new(),
            body: None,
            id: None,
            meta: None,
            line: None,
        })
    }

    /// A `GET` of `url`.
    ///
    /// # Errors
    /// As [`RequestSpec::new`].
    pub fn get(url: &str) -> Result<Self, InvalidInput> {
        Self::new(Method::GET, url)
    }

    /// Adds a header.
    ///
    /// # Errors
    /// The name is not a valid header name, or the value holds control characters.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, InvalidInput> {
        let (name, value) = parse_header_pair(name, value).map_err(InvalidInput::new)?;
        self.headers.append(name, value);
        Ok(self)
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    #[must_use]
    pub fn json(mut self, value: &impl serde::Serialize) -> Self {
        let body = serde_json::to_vec(value).expect("a serialisable value serialises");
        self.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body = Some(body.into());
        self
    }
}

/// Input that could not become a request; it ends as an `invalid_request` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidInput {
    /// The input line (from 1), when known.
    pub line: Option<u64>,
    /// What is wrong, naming the line when known.
    pub message: String,
}

impl InvalidInput {
    /// Invalid input with a message and no line.
    pub fn new(message: impl Into<String>) -> Self {
        Self { line: None, message: message.into() }
    }

    /// Names the line (the message gains a `line N: ` prefix).
    #[must_use]
    pub fn at_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self.message = format!("line {line}: {}", self.message);
        self
    }
}

impl std::fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InvalidInput {}

/// One item of input: a request, or what could not become one.
#[derive(Clone, Debug)]
pub enum Input {
    /// A valid request.
    Request(Box<RequestSpec>),
    /// The rest of a paginated walk that an interrupted run began: the request (its URL that of
    /// the next page) is page number `page` of its input; the walk goes on from there.
    Page {
        /// The request for that page.
        spec: Box<RequestSpec>,
        /// Its page number, from 0.
        page: u32,
    },
    /// Input that ends as an `invalid_request` record without sending anything.
    Invalid(InvalidInput),
    /// A request that is not to be sent and ends as a record with this error — under
    /// `--at-most-once`, one that an interrupted run may already have sent. `page` is the page
    /// number its record carries (when paginating).
    Unsent {
        /// The request, which names the record (URL, method, `id`, `meta`, line).
        spec: Box<RequestSpec>,
        /// The page number of its record, when paginating.
        page: Option<u32>,
        /// Why it is not sent.
        error: crate::record::RecordError,
    },
}

impl From<RequestSpec> for Input {
    fn from(spec: RequestSpec) -> Self {
        Input::Request(Box::new(spec))
    }
}

/// A URL to GET; one that does not parse is invalid input, whose record says why.
impl From<&str> for Input {
    fn from(url: &str) -> Self {
        RequestSpec::get(url).into()
    }
}

/// A URL to GET, as for `&str`.
impl From<String> for Input {
    fn from(url: String) -> Self {
        url.as_str().into()
    }
}

impl From<InvalidInput> for Input {
    fn from(invalid: InvalidInput) -> Self {
        Input::Invalid(invalid)
    }
}

impl From<Result<RequestSpec, InvalidInput>> for Input {
    fn from(result: Result<RequestSpec, InvalidInput>) -> Self {
        match result {
            Ok(spec) => spec.into(),
            Err(invalid) => invalid.into(),
        }
    }
}

fn describe_control(c: char) -> String {
    match c {
        '\r' => "a carriage return (CR)".into(),
        '\n' => "a line feed (LF)".into(),
        '\t' => "a tab".into(),
        '\0' => "a NUL byte".into(),
        c => format!("the control character U+{:04X}", c as u32),
    }
}

/// Parses and checks a URL: absolute, `http`/`https`, a host, at most [`MAX_URL_LEN`], and no
/// whitespace or control characters anywhere (checked on the raw text, before any parsing).
///
/// # Errors
/// A message that names the problem and quotes (a bounded prefix of) the URL.
pub fn parse_url(raw: &str) -> Result<Url, ParseError> {
    parse_url_text(raw).map_err(ParseError)
}

fn parse_url_text(raw: &str) -> Result<Url, String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("URL is {} bytes long, over the limit of {MAX_URL_LEN}", raw.len()));
    }
    // Bytes first: a control character is an ASCII one or a C1 control, whose UTF-8 starts with
    // 0xC2; only a URL with such a byte is read as characters, to name the one found.
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2)
        && let Some(c) = raw.chars().find(|c| c.is_control())
    {
        return Err(format!("URL contains {}: {}", describe_control(c), quote(raw)));
    }
    if raw.contains(' ') {
        return Err(format!("URL contains a space (percent-encode it as %20): {}", quote(raw)));
    }
    let url = absolute::parse(raw).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase if looks_like_url(raw) => format!(
            "relative URL without a base: {} (a URL without its scheme? write it https://{raw})",
            quote(raw)
        ),
        url::ParseError::RelativeUrlWithoutBase => format!("relative URL without a base: {}", quote(raw)),
        e => format!("bad URL {}: {e}", quote(raw)),
    })?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(format!("unsupported scheme {other:?} in {} (only http and https)", quote(raw))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("URL has no host: {}", quote(raw)));
    }
    Ok(url)
}

/// Whether `text` reads as a URL that lacks its scheme: a host name (with a dot, or `localhost`)
/// or an IPv4 address, followed by a port or a path (`api.example.com/users`, `localhost:8080`).
/// A bare `name.ext` is not taken for one: it is far more often a file name.
pub(crate) fn looks_like_url(text: &str) -> bool {
    let end = text.find(['/', '?']).unwrap_or(text.len());
    let (authority, rest) = text.split_at(end);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => (host, true),
        Some(_) => return false,
        None => (authority, false),
    };
    let labels: Vec<&str> = host.split('.').collect();
    let hostlike =
        labels.iter().all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    let named = host == "localhost" || labels.len() > 1;
    hostlike && named && (port || rest.starts_with('/'))
}

/// Parses a `Name: value` header line.
///
/// # Errors
/// No colon, a bad name, or control characters in the value.
pub fn parse_header_line(raw: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| format!("header {} is not of the form \"Name: value\"", quote(raw)))?;
    parse_header_pair(name.trim(), value.trim())
}

/// Checks a header name and value: a valid token, and no control characters (tab aside) in the value.
///
/// # Errors
/// A message naming the header.
pub fn parse_header_pair(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let header =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("bad header name {}", quote(name)))?;
    if let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') {
        return Err(format!("header {name} contains {}", describe_control(c)));
    }
    let value = HeaderValue::from_str(value).map_err(|_| format!("bad value for header {name}"))?;
    Ok((header, value))
}

/// Parses a method name: an HTTP token, upper-cased as curl users expect.
///
/// # Errors
/// The name is not a token.
pub fn parse_method(raw: &str) -> Result<Method, ParseError> {
    let upper = raw.to_ascii_uppercase();
    Method::from_bytes(upper.as_bytes())
        .ok()
        .filter(|_| !upper.is_empty())
        .ok_or_else(|| ParseError(format!("bad method {}", quote(raw))))
}

/// Quotes user text for a message, cut to a readable length.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_with_a_path_or_a_port_looks_like_a_url_without_its_scheme() {
        for url in ["api.example.com/users/1", "localhost:8080", "127.0.0.1:8080/json", "a.test/x?y=1"] {
            assert!(looks_like_url(url), "{url}");
        }
        for file in ["urls.txt", "data/urls.txt", "./urls.txt", "/tmp/in.txt", "in put.txt", "C:/x"] {
            assert!(!looks_like_url(file), "{file}");
        }
    }
}
