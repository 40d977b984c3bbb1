//! A task's wire form: one input, as the submitter parsed it, in a stream entry.
//!
//! The submitter reads and parses the input (globs expanded, templates filled, `-d` and `--json`
//! applied), so every worker gets a finished request and the numbering `i` is the submitter's
//! alone. The form is JSON: headers as name and value (base64 when a value is not UTF-8), the body
//! as base64, `id` and `meta` carried as the raw JSON they were.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use outofsync::request::{Input, InvalidInput, RequestSpec};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    h: Vec<Header>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    meta: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    /// Input that could not become a request: its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    invalid: Option<String>,
}

/// A header: `[name, value]`, or `[name, base64, true]` for a value that is not UTF-8.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Header {
    Text(String, String),
    Binary(String, String, bool),
}

/// Encodes an input for the queue. Pages and unsent inputs (not made by a submitter) go as the
/// requests they hold.
pub fn encode(input: &Input) -> Vec<u8> {
    let wire = match input {
        Input::Request(spec) | Input::Page { spec, .. } | Input::Unsent { spec, .. } => spec_wire(spec),
        Input::Invalid(invalid) => Wire {
            m: None,
            u: None,
            h: Vec::new(),
            b: None,
            id: None,
            meta: None,
            line: invalid.line,
            invalid: Some(invalid.message.clone()),
        },
    };
    serde_json::to_vec(&wire).expect("a task serialises")
}

fn spec_wire(spec: &RequestSpec) -> Wire {
    let h = spec
        .headers
        .iter()
        .map(|(name, value)| match std::str::from_utf8(value.as_bytes()) {
            Ok(text) => Header::Text(name.to_string(), text.to_owned()),
            Err(_) => Header::Binary(name.to_string(), STANDARD.encode(value.as_bytes()), true),
        })
        .collect();
    Wire {
        m: (spec.method != Method::GET).then(|| spec.method.to_string()),
        u: Some(spec.url.to_string()),
        h,
        b: spec.body.as_ref().map(|b| STANDARD.encode(b)),
        id: spec.id.clone(),
        meta: spec.meta.clone(),
        line: spec.line,
        invalid: None,
    }
}

/// Decodes a task. A task that does not decode (written by another version, or damaged) becomes
/// an `invalid_request` record that says so, rather than a worker that stops.
pub fn decode(bytes: &[u8]) -> Input {
    match serde_json::from_slice::<Wire>(bytes) {
        Ok(wire) => {
            from_wire(wire).unwrap_or_else(|why| InvalidInput::new(format!("bad queue task: {why}")).into())
        }
        Err(e) => InvalidInput::new(format!("bad queue task: {e}")).into(),
    }
}

fn from_wire(wire: Wire) -> Result<Input, String> {
    if let Some(message) = wire.invalid {
        return Ok(Input::Invalid(InvalidInput { line: wire.line, message }));
    }
    let method = match &wire.m {
        Some(m) => Method::from_bytes(m.as_bytes()).map_err(|e| e.to_string())?,
        None => Method::GET,
    };
    let url = wire.u.ok_or("no URL")?;
    let mut spec = RequestSpec::new(method, &url).map_err(|e| e.message)?;
    let mut headers = HeaderMap::with_capacity(wire.h.len());
    for header in wire.h {
        let (name, value) = match header {
            Header::Text(name, value) => (name, value.into_bytes()),
            Header::Binary(name, value, _) => (name, STANDARD.decode(value).map_err(|e| e.to_string())?),
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        headers.append(name, HeaderValue::from_bytes(&value).map_err(|e| e.to_string())?);
    }
    spec.headers = headers;
    if let Some(body) = wire.b {
        spec.body = Some(Bytes::from(STANDARD.decode(body).map_err(|e| e.to_string())?));
    }
    (spec.id, spec.meta, spec.line) = (wire.id, wire.meta, wire.line);
    Ok(Input::Request(Box::new(spec)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_invalid_input_survive_the_queue_byte_for_byte() {
        let mut spec = RequestSpec::new(Method::POST, "http://a.test/x?y=1").unwrap().body(vec![0u8, 159, 1]);
        spec.headers.append("x-a", HeaderValue::from_static("1"));
        spec.headers.append("x-a", HeaderValue::from_static("2"));
        spec.headers.append("x-bin", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        spec.id = Some(RawValue::from_string("{\"k\": 1}".into()).unwrap());
        spec.line = Some(7);
        let Input::Request(back) = decode(&encode(&Input::Request(Box::new(spec.clone())))) else {
            panic!("a request")
        };
        assert_eq!(
            (back.method, back.url, back.body, back.line),
            (spec.method, spec.url, spec.body, spec.line)
        );
        assert_eq!(back.headers, spec.headers);
        assert_eq!(back.id.unwrap().get(), "{\"k\": 1}");
        let invalid = InvalidInput::new("bad").at_line(3);
        let Input::Invalid(back) = decode(&encode(&Input::Invalid(invalid.clone()))) else { panic!() };
        assert_eq!(back, invalid);
        assert!(matches!(decode(b"nonsense"), Input::Invalid(i) if i.message.starts_with("bad queue task")));
    }
}
