//! [`Record`]: what every input request ends as, success or failure, and its JSON line.
//!
//! The JSON form is a contract (`schema/record.schema.json`); it is written by hand here rather
//! than through serde so that a JSON body goes into the line as its raw, already validated bytes —
//! building a tree of a 64 KiB document would cost more than the whole request.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Why a request failed: a small, closed set, each with a clear message in [`RecordError`].
///
/// Non-exhaustive: the set may grow by a kind in a later version (the schema names every one).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input could not become a request (bad URL, bad JSON, bad method, control characters…).
    /// Nothing was sent.
    InvalidRequest,
    /// The host name did not resolve.
    Dns,
    /// No TCP connection could be made (refused, unreachable).
    Connect,
    /// The TLS handshake failed (untrusted or mismatched certificate, protocol error).
    Tls,
    /// A connect, idle-read, per-attempt or whole-request deadline passed.
    Timeout,
    /// The server answered with a status that is not counted as success.
    HttpStatus,
    /// The body was larger than allowed, on the wire or once decompressed.
    TooLarge,
    /// The response could not be decoded: bad HTTP framing, bad compression, not JSON when JSON
    /// was required, or a filter that failed on it.
    Decode,
    /// A redirect could not be followed: too many, a loop, a bad location or a refused scheme.
    Redirect,
    /// The connection failed mid-exchange (reset, closed early, other I/O errors).
    Io,
    /// No credentials could be had for the request (the token endpoint failed, refused the
    /// client, or the refreshed token could not be saved); the request was not sent without them.
    Auth,
}

impl ErrorKind {
    /// Every kind, in the order of the summary.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::InvalidRequest,
        ErrorKind::Dns,
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::Timeout,
        ErrorKind::HttpStatus,
        ErrorKind::TooLarge,
        ErrorKind::Decode,
        ErrorKind::Redirect,
        ErrorKind::Io,
        ErrorKind::Auth,
    ];

    /// The name used in records and summaries (`invalid_request`, `dns`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Decode => "decode",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Io => "io",
            ErrorKind::Auth => "auth",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure: its kind and a human message that names the cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What happened, for a human (`"503 Service Unavailable after 3 attempts"`).
    pub message: String,
}

impl RecordError {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for RecordError {}

/// The response body as kept in the record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Payload {
    /// No body kept (`--body none`, an empty body, or a failure before the body).
    #[default]
    None,
    /// A JSON document: validated, UTF-8, on one line; written into the record as is (`"json"`).
    Json(String),
    /// UTF-8 text that is not JSON (`"text"`).
    Text(String),
    /// Anything else (`"body_b64"`, base64 in the record).
    Binary(Vec<u8>),
}

/// One earlier attempt of a request: a retry followed it, or it met a stale connection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attempt {
    /// The status it got, if it got one.
    pub status: Option<u16>,
    /// Why it failed, if it failed before a status.
    pub error: Option<ErrorKind>,
    /// How long it took.
    pub elapsed_ms: f64,
    /// It went out on a reused keep-alive connection that the server had already closed, and
    /// the request was sent again at once on a new connection: a send, but not a retry.
    pub stale_connection: bool,
}

/// The parent of a child request (`--then`): the record whose body gave the values that filled
/// the child's template.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Parent {
    /// The parent's `i`.
    pub i: u64,
    /// The parent's page, when it was paginated.
    pub page: Option<u32>,
}

/// What one input request ended as. Exactly one per input (one per page when paginating).
///
/// Non-exhaustive: later versions add optional fields (as the record's JSON grows only by
/// optional fields).
#[non_exhaustive]
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// The request's position in its input, from 0: the key of `--resume` and `--ordered`. The
    /// input is the run's, or for a child request the outputs of `--then-from` on its parent's
    /// body: a child's key is (`parent`, `i`, `page`).
    pub i: u64,
    /// The page, from 0, when paginating.
    pub page: Option<u32>,
    /// For a child request (`--then`), its parent.
    pub parent: Option<Parent>,
    /// The input line the request came from, from 1.
    pub line: Option<u64>,
    /// The `id` of a JSON request object, carried through as given.
    pub id: Option<Box<RawValue>>,
    /// The request URL.
    pub url: Option<String>,
    /// The URL of the last response, when redirects were followed.
    pub final_url: Option<String>,
    /// The next page, when paginating and there is one.
    pub next: Option<String>,
    /// The request method.
    pub method: Option<String>,
    /// Whether the request succeeded (by default: a 2xx status and a body that decoded).
    pub ok: bool,
    /// The final HTTP status, if a response came.
    pub status: Option<u16>,
    /// The request was sent with the validators of an earlier run (`--validators`) and the server
    /// answered `304 Not Modified`: what it had then is still current. The record is ok and has
    /// no body.
    pub not_modified: bool,
    /// The protocol of the connection the last attempt went out on (`"1.1"` or `"2"` in JSON).
    pub http: Option<http::Version>,
    /// How many times the request was sent (0: never, as for invalid input).
    pub attempts: u32,
    /// The final response's headers that were asked for (`-i`, `--keep-header`), lower-case
    /// names in the order they came; a name sent more than once appears once per value.
    pub headers: Option<Vec<(http::HeaderName, String)>>,
    /// How many redirects were followed.
    pub redirects: u32,
    /// Time from the first attempt to the end of the last, in milliseconds (backoff included).
    pub elapsed_ms: f64,
    /// The size of the body once decoded, in bytes.
    pub bytes: Option<u64>,
    /// The body, as kept.
    pub payload: Payload,
    /// Why the request failed, if it did.
    pub error: Option<RecordError>,
    /// The attempts before the last one, oldest first (at most [`Record::HISTORY_LIMIT`]).
    pub history: Vec<Attempt>,
    /// Fields of the input object that are not part of the request, carried through.
    pub meta: Option<Box<RawValue>>,
}

impl Record {
    /// The most earlier attempts kept in `history`; older ones are dropped first.
    pub const HISTORY_LIMIT: usize = 16;

    /// Adds an earlier attempt to `history`, dropping the oldest past [`Record::HISTORY_LIMIT`].
    pub fn push_history(&mut self, attempt: Attempt) {
        if self.history.len() >= Self::HISTORY_LIMIT {
            self.history.remove(0);
        }
        self.history.push(attempt);
    }

    /// A failed record for input that never became a request.
    pub fn invalid(i: u64, line: Option<u64>, message: impl Into<String>) -> Self {
        Self { i, line, error: Some(RecordError::new(ErrorKind::InvalidRequest, message)), ..Self::default() }
    }

    /// The body as JSON text, if it was kept as JSON.
    pub fn json_str(&self) -> Option<&str> {
        match &self.payload {
            Payload::Json(s) => Some(s),
            _ => None,
        }
    }

    /// Deserialises the JSON body into `T`.
    ///
    /// # Errors
    /// The record holds no JSON body, or the body does not fit `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, RecordError> {
        let text = self
            .json_str()
            .ok_or_else(|| RecordError::new(ErrorKind::Decode, "the record holds no JSON body"))?;
        serde_json::from_str(text).map_err(|e| RecordError::new(ErrorKind::Decode, e.to_string()))
    }

    /// The kind of failure, if the record failed.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.error.as_ref().map(|e| e.kind)
    }

    /// The record if it succeeded, else its error: so that `?` works on records.
    ///
    /// # Errors
    /// The record's [`RecordError`] when it failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = outofsync_server::Server::start()?;
    /// # let url = server.url("/json?id=7");
    /// let fetcher = outofsync::Fetcher::builder().build()?;
    /// let record = fetcher.fetch(outofsync::RequestSpec::get(&url)?).await.into_result()?;
    /// let body: serde_json::Value = record.json()?;
    /// assert_eq!(body["id"], 7);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
    /// ```
    pub fn into_result(self) -> Result<Record, RecordError> {
        match self.error {
            Some(error) => Err(error),
            None if self.ok => Ok(self),
            None => Err(RecordError::new(ErrorKind::Io, "the request did not succeed")),
        }
    }

    /// The final status, typed.
    pub fn status_code(&self) -> Option<http::StatusCode> {
        self.status.and_then(|s| http::StatusCode::from_u16(s).ok())
    }

    /// The request method, typed.
    pub fn http_method(&self) -> Option<http::Method> {
        self.method.as_deref().and_then(|m| http::Method::from_bytes(m.as_bytes()).ok())
    }

    /// The request URL, parsed.
    pub fn request_url(&self) -> Option<url::Url> {
        self.url.as_deref().and_then(|u| url::Url::parse(u).ok())
    }

    /// Appends the record as one line of JSON, ending in `\n`.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        self.write_line(out, true);
    }

    /// Appends the record's line as [`Record::write_json_line`] does, but without the text of a
    /// JSON body, and says where in `out` that text belongs: a writer can then send the body from
    /// where it is instead of copying it into the line (see `output::sink`).
    pub(crate) fn write_json_line_around_json(&self, out: &mut Vec<u8>) -> Option<usize> {
        self.write_line(out, false)
    }

    /// The line, with the JSON body's text or only the place for it (returned).
    fn write_line(&self, out: &mut Vec<u8>, with_json: bool) -> Option<usize> {
        let mut json_at = None;
        out.extend_from_slice(b"{\"i\":");
        write_u64(out, self.i);
        if let Some(page) = self.page {
            out.extend_from_slice(b",\"page\":");
            write_u64(out, page.into());
        }
        if let Some(parent) = self.parent {
            out.extend_from_slice(b",\"parent\":{\"i\":");
            write_u64(out, parent.i);
            if let Some(page) = parent.page {
                out.extend_from_slice(b",\"page\":");
                write_u64(out, page.into());
            }
            out.push(b'}');
        }
        if let Some(line) = self.line {
            out.extend_from_slice(b",\"line\":");
            write_u64(out, line);
        }
        if let Some(id) = &self.id {
            out.extend_from_slice(b",\"id\":");
            out.extend_from_slice(id.get().as_bytes());
        }
        if let Some(url) = &self.url {
            out.extend_from_slice(b",\"url\":");
            write_str(out, url);
        }
        if let Some(url) = &self.final_url {
            out.extend_from_slice(b",\"final_url\":");
            write_str(out, url);
        }
        if let Some(next) = &self.next {
            out.extend_from_slice(b",\"next\":");
            write_str(out, next);
        }
        if let Some(method) = &self.method {
            out.extend_from_slice(b",\"method\":");
            write_str(out, method);
        }
        out.extend_from_slice(if self.ok { b",\"ok\":true" } else { b",\"ok\":false" });
        if let Some(status) = self.status {
            out.extend_from_slice(b",\"status\":");
            write_u64(out, status.into());
        }
        if self.not_modified {
            out.extend_from_slice(b",\"not_modified\":true");
        }
        if let Some(version) = self.http {
            out.extend_from_slice(b",\"http\":\"");
            out.extend_from_slice(version_name(version).as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b",\"attempts\":");
        write_u64(out, self.attempts.into());
        if self.redirects > 0 {
            out.extend_from_slice(b",\"redirects\":");
            write_u64(out, self.redirects.into());
        }
        out.extend_from_slice(b",\"elapsed_ms\":");
        write_ms(out, self.elapsed_ms);
        if let Some(bytes) = self.bytes {
            out.extend_from_slice(b",\"bytes\":");
            write_u64(out, bytes);
        }
        if let Some(headers) = &self.headers {
            write_headers(out, headers);
        }
        match &self.payload {
            Payload::None => {}
            Payload::Json(json) => {
                out.extend_from_slice(b",\"json\":");
                if with_json {
                    out.extend_from_slice(json.as_bytes());
                } else {
                    json_at = Some(out.len());
                }
            }
            Payload::Text(text) => {
                out.extend_from_slice(b",\"text\":");
                write_str(out, text);
            }
            Payload::Binary(bytes) => {
                out.extend_from_slice(b",\"body_b64\":\"");
                base64::engine::general_purpose::STANDARD.encode_slice_vec(bytes, out);
                out.push(b'"');
            }
        }
        if let Some(error) = &self.error {
            out.extend_from_slice(b",\"error\":{\"kind\":\"");
            out.extend_from_slice(error.kind.as_str().as_bytes());
            out.extend_from_slice(b"\",\"message\":");
            write_str(out, &error.message);
            out.push(b'}');
        }
        if !self.history.is_empty() {
            out.extend_from_slice(b",\"history\":[");
            for (n, attempt) in self.history.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                out.push(b'{');
                if let Some(status) = attempt.status {
                    out.extend_from_slice(b"\"status\":");
                    write_u64(out, status.into());
                    out.push(b',');
                }
                if let Some(kind) = attempt.error {
                    out.extend_from_slice(b"\"error\":\"");
                    out.extend_from_slice(kind.as_str().as_bytes());
                    out.extend_from_slice(b"\",");
                }
                out.extend_from_slice(b"\"elapsed_ms\":");
                write_ms(out, attempt.elapsed_ms);
                if attempt.stale_connection {
                    out.extend_from_slice(b",\"stale_connection\":true");
                }
                out.push(b'}');
            }
            out.push(b']');
        }
        if let Some(meta) = &self.meta {
            out.extend_from_slice(b",\"meta\":");
            out.extend_from_slice(meta.get().as_bytes());
        }
        out.extend_from_slice(b"}\n");
        json_at
    }

    /// About how many bytes [`Record::write_json_line`] writes: enough to reserve once for a big
    /// body instead of growing (and copying) the buffer on the way.
    pub fn line_len_hint(&self) -> usize {
        let payload = match &self.payload {
            Payload::None => 0,
            Payload::Json(json) => json.len(),
            // Escapes make text longer; an eighth more covers typical text.
            Payload::Text(text) => text.len() + text.len() / 8,
            Payload::Binary(bytes) => bytes.len().div_ceil(3) * 4,
        };
        let strings = [&self.url, &self.final_url, &self.next, &self.method]
            .into_iter()
            .flatten()
            .map(String::len)
            .sum::<usize>();
        256 + payload + strings + self.history.len() * 48 + self.meta.as_ref().map_or(0, |m| m.get().len())
    }

    /// The record as one line of JSON, ending in `\n`.
    pub fn to_json_line(&self) -> String {
        let mut out = Vec::with_capacity(self.line_len_hint());
        self.write_json_line(&mut out);
        String::from_utf8(out).expect("records are written as UTF-8")
    }
}

/// `"headers":{…}`: each name once, with a string for one value and an array for several.
fn write_headers(out: &mut Vec<u8>, headers: &[(http::HeaderName, String)]) {
    out.extend_from_slice(b",\"headers\":{");
    let mut first = true;
    for (n, (name, _)) in headers.iter().enumerate() {
        if headers[..n].iter().any(|(earlier, _)| earlier == name) {
            continue; // written with the first of its name
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, name.as_str());
        out.push(b':');
        let mut values = headers[n..].iter().filter(|(other, _)| other == name).map(|(_, v)| v);
        let value = values.next().expect("the name's own value");
        match values.next() {
            None => write_str(out, value),
            Some(second) => {
                out.push(b'[');
                write_str(out, value);
                out.push(b',');
                write_str(out, second);
                for more in values {
                    out.push(b',');
                    write_str(out, more);
                }
                out.push(b']');
            }
        }
    }
    out.push(b'}');
}

/// An HTTP version as the record names it.
pub fn version_name(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_11 => "1.1",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "?",
    }
}

/// base64's `encode_slice` into a growing `Vec`.
trait EncodeSliceVec {
    fn encode_slice_vec(&self, input: &[u8], out: &mut Vec<u8>);
}

impl<E: base64::Engine> EncodeSliceVec for E {
    fn encode_slice_vec(&self, input: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + base64::encoded_len(input.len(), true).expect("fits in memory"), 0);
        let n = self.encode_slice(input, &mut out[start..]).expect("sized above");
        out.truncate(start + n);
    }
}

fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Milliseconds with microsecond resolution: enough for loopback, short in the file.
fn write_ms(out: &mut Vec<u8>, ms: f64) {
    let rounded = (ms * 1000.0).round() / 1000.0;
    if rounded.is_finite() {
        // ryu writes the shortest form that reads back the same, without fmt's machinery.
        out.extend_from_slice(ryu::Buffer::new().format_finite(rounded).as_bytes());
    } else {
        out.push(b'0');
    }
}
