//! From decoded body bytes to the record's [`Payload`]: validate JSON, never rebuild it.
//!
//! A JSON body is checked (UTF-8, then a serde pass that builds nothing) and kept as its own text,
//! with line breaks — which JSON allows only as whitespace between tokens — turned into spaces so
//! the record stays on one line.

use serde::de::IgnoredAny;

use super::config::BodyMode;
use crate::record::Payload;

/// Turns a decoded body into what the record keeps; `Err` is a `decode` failure message.
pub fn classify(body: Vec<u8>, mode: BodyMode) -> Result<Payload, String> {
    if mode == BodyMode::None || body.is_empty() {
        return Ok(Payload::None);
    }
    let text = match String::from_utf8(body) {
        Ok(text) => text,
        Err(e) if mode == BodyMode::Json => {
            return Err(format!(
                "body is not JSON: not valid UTF-8 at byte {}",
                e.utf8_error().valid_up_to()
            ));
        }
        Err(e) => return Ok(Payload::Binary(e.into_bytes())),
    };
    match mode {
        BodyMode::Json => match serde_json::from_str::<IgnoredAny>(&text) {
            Ok(_) => Ok(Payload::Json(one_line(text))),
            Err(e) => Err(format!("body is not JSON: {e}")),
        },
        BodyMode::Auto if looks_like_json(&text) && serde_json::from_str::<IgnoredAny>(&text).is_ok() => {
            Ok(Payload::Json(one_line(text)))
        }
        _ => Ok(Payload::Text(text)),
    }
}

/// Cheap pre-check so plain text does not pay for a failed parse.
fn looks_like_json(text: &str) -> bool {
    matches!(
        text.trim_start().as_bytes().first(),
        Some(b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
    )
}

/// JSON whitespace may hold line breaks; inside strings they are escaped, so replacing every raw
/// CR and LF with a space keeps the document equal and puts it on one line.
fn one_line(text: String) -> String {
    if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_none() {
        return text;
    }
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_kept_on_one_line_text_and_binary_are_not_json() {
        let pretty = b"{\n  \"a\": \"x\\ny\",\r\n  \"b\": [1, 2]\n}\n".to_vec();
        let Payload::Json(json) = classify(pretty, BodyMode::Auto).unwrap() else { panic!("json") };
        assert!(!json.contains('\n') && !json.contains('\r'));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["a"], "x\ny");
        assert_eq!(classify(b"nope".to_vec(), BodyMode::Auto).unwrap(), Payload::Text("nope".into()));
        assert_eq!(classify(b"{bad".to_vec(), BodyMode::Auto).unwrap(), Payload::Text("{bad".into()));
        assert!(classify(b"{bad".to_vec(), BodyMode::Json).unwrap_err().starts_with("body is not JSON"));
        assert_eq!(classify(vec![0xff, 0], BodyMode::Auto).unwrap(), Payload::Binary(vec![0xff, 0]));
        assert_eq!(classify(b"{}".to_vec(), BodyMode::None).unwrap(), Payload::None);
        assert_eq!(classify(b"[1]".to_vec(), BodyMode::Text).unwrap(), Payload::Text("[1]".into()));
    }
}
