//! Small helpers every endpoint shares: JSON replies, JSON errors and query-string parameters.

use std::borrow::Cow;
use std::fmt::Display;
use std::str::FromStr;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use serde::Serialize;

use super::body::Body;

/// What every endpoint returns.
pub type Reply = Response<Body>;

/// The outcome of an endpoint that may refuse its input.
pub type Answer = Result<Reply, Refusal>;

/// Why a request was refused; it becomes a JSON error reply `{"error": message, "status": code}`.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    message: String,
    allow: Option<&'static str>,
}

impl Refusal {
    /// A refusal with this status.
    pub fn new(status: StatusCode, message: impl Display) -> Self {
        Self { status, message: message.to_string(), allow: None }
    }

    /// A `405` naming the methods that are allowed.
    pub fn method_not_allowed(path: &str, allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(StatusCode::METHOD_NOT_ALLOWED, format!("{path} answers {allow}"))
        }
    }

    /// The reply that carries this refusal.
    pub fn into_reply(self) -> Reply {
        let mut reply =
            json(self.status, &serde_json::json!({ "error": self.message, "status": self.status.as_u16() }));
        if let Some(allow) = self.allow {
            reply.headers_mut().insert(http::header::ALLOW, HeaderValue::from_static(allow));
        }
        reply
    }
}

pub const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A reply with a JSON body that is already serialised.
pub fn json_bytes(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    with_type(status, Body::full(body), APPLICATION_JSON)
}

/// A reply with `value` serialised as JSON.
pub fn json(status: StatusCode, value: &impl Serialize) -> Reply {
    let body = serde_json::to_vec(value).expect("server documents always serialise");
    json_bytes(status, body)
}

/// A reply with a body and a content type.
pub fn with_type(status: StatusCode, body: Body, content_type: HeaderValue) -> Reply {
    let mut reply = Response::new(body);
    *reply.status_mut() = status;
    reply.headers_mut().insert(CONTENT_TYPE, content_type);
    reply
}

/// A refusal with this status.
pub fn error(status: StatusCode, message: impl Display) -> Refusal {
    Refusal::new(status, message)
}

/// A `400 Bad Request` naming what was wrong.
pub fn bad_request(message: impl Display) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, message)
}

/// Parses a path segment such as the `500` of `/delay/500`.
pub fn segment<T: FromStr>(name: &str, value: &str) -> Result<T, Refusal> {
    value.parse().map_err(|_| bad_request(format!("{name} must be a number, got {value:?}")))
}

/// Checks that `value` is within `max`, or refuses with a 400 that names the cap.
pub fn capped<T: PartialOrd + Display>(name: &str, value: T, max: T) -> Result<T, Refusal> {
    if value > max { Err(bad_request(format!("{name} is over the cap of {max}"))) } else { Ok(value) }
}

/// The decoded `name=value` pairs of a query string.
pub struct Query<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Query<'a> {
    /// Decodes a query string (absent means empty).
    pub fn parse(query: Option<&'a str>) -> Self {
        let pairs = query.map(|q| form_urlencoded::parse(q.as_bytes()).collect()).unwrap_or_default();
        Self { pairs }
    }

    /// The first value of `name`, as text.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref())
    }

    /// The first value of `name`, parsed; a value that does not parse is a ready 400 reply.
    pub fn get<T: FromStr>(&self, name: &str) -> Result<Option<T>, Refusal> {
        match self.str(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| bad_request(format!("query parameter {name} has a bad value: {v:?}"))),
        }
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(Cow<'a, str>, Cow<'a, str>)] {
        &self.pairs
    }
}
