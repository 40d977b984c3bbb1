//! From decoded body bytes to the record's [`Payload`]: validate JSON, never rebuild it.
//!
//! A JSON body is checked (UTF-8, then a pass that builds nothing: the `validate` module) and
//! kept as its own text, with line breaks — which JSON allows only as whitespace between tokens —
//! turned into spaces so the record stays on one line.

use serde::de::IgnoredAny;

use super::config::BodyMode;
use super::validate::is_json;
use crate::record::Payload;

/// Turns a decoded body into what a [`Record`](crate::Record) keeps of it, as [`Fetcher`](crate::Fetcher)
/// does: JSON is validated and kept as its own text on one line, other UTF-8 as text, the rest as bytes.
///
/// Public so that a client other than the engine's (the lab's blocking client) builds the very same
/// records.
///
/// # Errors
/// The message of a `decode` failure: `mode` is [`BodyMode::Json`] and the body is not JSON.
pub fn classify(body: Vec<u8>, mode: BodyMode) -> Result<Payload, String> {
    if mode == BodyMode::None || body.is_empty() {
        return Ok(Payload::None);
    }
    // UTF-8 first, and once (std's check runs at tens of GB/s): the JSON check takes text, and
    // the record must stay UTF-8.
    let mut text = match String::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            return match mode {
                BodyMode::Json => {
                    Err(format!("body is not JSON: not valid UTF-8 at byte {}", e.utf8_error().valid_up_to()))
                }
                _ => Ok(Payload::Binary(e.into_bytes())),
            };
        }
    };
    // A byte order mark before JSON is not part of it (RFC 8259 §8.1 lets a parser ignore it,
    // and Python's, so aiohttp's, does); it stays on text that is not JSON.
    let bom = text.starts_with('\u{feff}');
    let json_text = if bom { &text['\u{feff}'.len_utf8()..] } else { text.as_str() };
    let is_json = match mode {
        BodyMode::Json if is_json(json_text) => true,
        // serde_json says where and why. It refuses exactly what `is_json` refuses (tests compare
        // the two); were they ever to disagree, serde's verdict stands rather than a panic.
        BodyMode::Json => match serde_json::from_str::<IgnoredAny>(json_text) {
            Ok(_) => true,
            Err(e) => return Err(format!("body is not JSON: {e}")),
        },
        BodyMode::Auto => looks_like_json(json_text.as_bytes()) && is_json(json_text),
        _ => false,
    };
    if is_json && bom {
        text.replace_range(..'\u{feff}'.len_utf8(), "");
    }
    Ok(if is_json { Payload::Json(one_line(text)) } else { Payload::Text(text) })
}

/// Cheap pre-check so plain text does not pay for a failed parse.
fn looks_like_json(body: &[u8]) -> bool {
    matches!(
        body.trim_ascii_start().first(),
        Some(b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
    )
}

/// JSON allows raw CR and LF only as whitespace between tokens (inside strings they are escaped),
/// so turning each into a space keeps the document equal and puts it on one line. Done on the
/// bytes, found with memchr, and a 64 KiB body ending in a newline costs a few nanoseconds instead
/// of a character-by-character rewrite.
fn one_line(mut text: String) -> String {
    // SAFETY: only the ASCII bytes CR and LF are overwritten, each with the ASCII space; an ASCII
    // byte is a whole character in UTF-8, so the text stays valid UTF-8.
    let bytes = unsafe { text.as_mut_vec() };
    let mut from = 0;
    while let Some(at) = memchr::memchr2(b'\n', b'\r', &bytes[from..]) {
        bytes[from + at] = b' ';
        from += at + 1;
    }
    text
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

    #[test]
    fn a_byte_order_mark_before_json_is_dropped_and_kept_on_text() {
        let with_bom = |body: &str| [b"\xEF\xBB\xBF".as_slice(), body.as_bytes()].concat();
        assert_eq!(
            classify(with_bom(r#"{"a":1}"#), BodyMode::Auto).unwrap(),
            Payload::Json(r#"{"a":1}"#.into())
        );
        assert_eq!(classify(with_bom("[1]"), BodyMode::Json).unwrap(), Payload::Json("[1]".into()));
        assert_eq!(classify(with_bom("hi"), BodyMode::Auto).unwrap(), Payload::Text("\u{feff}hi".into()));
        assert!(classify(with_bom("{bad"), BodyMode::Json).is_err());
    }
}
