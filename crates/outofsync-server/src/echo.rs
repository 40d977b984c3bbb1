//! `ANY /anything[/…]`: echoes the request back as JSON, for header, auth and body tests.

use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use super::reply::{self, Answer, Query};

/// The largest request body `/anything` reads; past it, `413`.
pub const MAX_BODY: usize = 16 << 20;

/// `ANY /anything`: `{"method","path","query","args","headers","body","json","bytes"}`.
///
/// `headers` maps each lower-case name to its value (repeated headers are joined with `", "`);
/// the body appears as `text` when it is UTF-8 (and also parsed under `json` when it is JSON),
/// otherwise as `body_b64`.
pub async fn anything(parts: &Parts, body: Incoming) -> Answer {
    let body: Bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(reply::error(StatusCode::PAYLOAD_TOO_LARGE, format!("body over {MAX_BODY} bytes")));
        }
        Err(e) => return Err(reply::bad_request(format!("could not read the body: {e}"))),
    };

    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let query = parts.uri.query();
    let mut args = Map::new();
    for (k, v) in Query::parse(query).pairs() {
        args.entry(k.to_string())
            .and_modify(|e| {
                if let Value::Array(a) = e {
                    a.push(json!(v));
                } else {
                    *e = json!([e.take(), v]);
                }
            })
            .or_insert_with(|| json!(v));
    }
    let mut doc = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": query,
        "args": args,
        "headers": headers,
        "version": format!("{:?}", parts.version),
        "bytes": body.len(),
    });
    match std::str::from_utf8(&body) {
        Ok(text) => {
            doc["text"] = json!(text);
            if let Ok(value) = serde_json::from_str::<Value>(text) {
                doc["json"] = value;
            }
        }
        Err(_) => doc["body_b64"] = json!(base64::engine::general_purpose::STANDARD.encode(&body)),
    }
    Ok(reply::json(StatusCode::OK, &doc))
}
