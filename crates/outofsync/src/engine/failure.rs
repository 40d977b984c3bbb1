//! [`Failure`]: why one exchange failed, as a record's error kind and a message that names the
//! cause — and the readings of hyper's, the connector's and the decoder's errors into it.

use std::error::Error as StdError;
use std::io;

use super::connector::ConnectError;
use super::decode::BodyError;
use crate::record::ErrorKind;

/// Why an exchange failed: a record's error kind and message.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The kind, as the record will say it.
    pub kind: ErrorKind,
    /// What happened, naming the cause.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

impl From<BodyError> for Failure {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge(m) => Failure::new(ErrorKind::TooLarge, m),
            BodyError::Decode(m) => Failure::new(ErrorKind::Decode, m),
        }
    }
}

/// A connection that could not be opened.
pub(crate) fn connect_failure(e: &ConnectError) -> Failure {
    let kind = match e {
        ConnectError::Dns { .. } => ErrorKind::Dns,
        ConnectError::Connect { .. } | ConnectError::Proxy { .. } => ErrorKind::Connect,
        ConnectError::Timeout { .. } => ErrorKind::Timeout,
        ConnectError::Tls { .. } => ErrorKind::Tls,
    };
    Failure::new(kind, describe(e))
}

/// A failure while the body was coming in, `received` bytes into it.
pub(crate) fn body_failure(e: &hyper::Error, received: u64) -> Failure {
    let io_kind = std::iter::successors(e.source(), |&c| c.source())
        .find_map(|c| c.downcast_ref::<io::Error>())
        .map(io::Error::kind);
    // hyper says "incomplete" for a chunked body cut short, and passes on an unexpected end of
    // file from its length decoder for a Content-Length body cut short: the same event to us.
    if e.is_incomplete_message() || io_kind == Some(io::ErrorKind::UnexpectedEof) {
        return Failure::new(
            ErrorKind::Io,
            format!("the connection closed after {received} bytes, before the body was complete"),
        );
    }
    // Broken chunked framing comes as invalid data (or input) from hyper's decoder: the server's
    // fault, not the connection's, and not worth a retry.
    if matches!(io_kind, Some(io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput)) {
        let cause = std::iter::successors(e.source(), |&c| c.source())
            .last()
            .map_or_else(String::new, |c| c.to_string());
        return Failure::new(
            ErrorKind::Decode,
            format!("invalid HTTP in the body after {received} bytes: {cause}"),
        );
    }
    hyper_failure(e, "the body")
}

/// A failure of hyper's while sending a request or reading `what`.
pub(crate) fn hyper_failure(e: &hyper::Error, what: &str) -> Failure {
    if e.is_timeout() {
        Failure::new(ErrorKind::Timeout, format!("timed out reading {what}"))
    } else if e.is_parse() || e.is_parse_status() {
        Failure::new(ErrorKind::Decode, format!("invalid HTTP in {what}: {}", describe(e)))
    } else if e.is_incomplete_message() {
        Failure::new(ErrorKind::Io, format!("the connection closed before {what} was complete"))
    } else {
        Failure::new(ErrorKind::Io, format!("reading {what} failed: {}", describe(e)))
    }
}

/// Whether a request failed as one sent on a connection the server had already given up fails.
///
/// Over HTTP/1.1: the connection ended or reset before any of the response came (a keep-alive
/// connection the server closed while it was idle). Over HTTP/2 only what the server says it did
/// not process (RFC 9113 §8.7): `REFUSED_STREAM`, or a graceful `GOAWAY`. A reset of an HTTP/2
/// connection that was carrying streams is no such sign: the server may have begun on them.
pub(crate) fn stale_connection(e: &hyper::Error, h2: bool) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::REFUSED_STREAM)
                || (h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR));
        }
        if h2 {
            source = cause.source();
            continue;
        }
        if let Some(h) = cause.downcast_ref::<hyper::Error>()
            && h.is_incomplete_message()
        {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
            return matches!(io.kind(), ConnectionReset | BrokenPipe | ConnectionAborted);
        }
        source = cause.source();
    }
    false
}

/// An error and its causes, as one line, without repeating a message a cause already says.
pub(crate) fn describe(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
