//! The validator against serde_json, on edge cases, deep nesting, every offset, and generated
//! and mutated documents.

use serde::de::IgnoredAny;

use super::*;

fn serde_says(text: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(text).is_ok()
}

/// serde's verdict on `text`, after checking that `is_json` gives the same, and so do the flat
/// loop and the structural scan on their own (whatever the document's size).
fn check(text: &str) -> bool {
    let expected = serde_says(text);
    assert_eq!(is_json(text), expected, "{text:?}");
    assert_eq!(flat(text), expected, "flat loop: {text:?}");
    if let Some(verdict) = scanned(text) {
        assert_eq!(verdict, expected, "structural scan: {text:?}");
    }
    if let Some(verdict) = scanned_avx2(text) {
        assert_eq!(verdict, expected, "structural scan, AVX2: {text:?}");
    }
    expected
}

#[test]
fn accepts_and_refuses_what_serde_does_on_the_edge_cases() {
    let cases = [
        "0",
        "-0",
        "1.5e+3",
        "-12.0E-7",
        "[]",
        "{}",
        " \t\r\n[ 1 , {\"a\" : [ ] } ]\n",
        "\"\"",
        "\"\\u00e9\\n\\\"\\/\"",
        "\"é ü 日本\"",
        "true",
        "false",
        "null",
        "[[[[[]]]]]",
        "{\"a\":{\"b\":{\"c\":[1,2,{\"d\":null}]}}}",
        "1e5",
        "0.0",
        "[0,-0,1]",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "1e+",
        "+1",
        "--1",
        "0x10",
        "[1,]",
        "[,1]",
        "{\"a\":1,}",
        "{\"a\"}",
        "{a:1}",
        "{\"a\" 1}",
        "{1:1}",
        "[1 2]",
        "\"abc",
        "\"a\u{1}b\"",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "tru",
        "nul",
        "falsey",
        "[]]",
        "[}",
        "{]",
        "",
        " ",
        "1 2",
        "[1]x",
        "\u{feff}[]",
        "[\"\\ud800\"]",
        "NaN",
        "Infinity",
        "[1e400]",
        "\"\t\"",
    ];
    for case in cases {
        check(case);
    }
}

#[test]
fn depth_is_not_limited_and_the_stack_spills_and_comes_back() {
    for depth in [63, 64, 65, 128, 129, 1_000, 10_000] {
        let mut text = String::new();
        for level in 0..depth {
            text.push_str(if level % 3 == 0 { "{\"k\":" } else { "[" });
        }
        text.push('1');
        for level in (0..depth).rev() {
            text.push(if level % 3 == 0 { '}' } else { ']' });
        }
        assert!(check(&text), "depth {depth}");
        // A wrong closer at the deepest level, or one missing at the top, is caught.
        let mut wrong = text.clone().into_bytes();
        let at = text.find('1').expect("the innermost value") + 1;
        wrong[at] = if wrong[at] == b'}' { b']' } else { b'}' };
        let wrong = String::from_utf8(wrong).expect("ASCII");
        assert!(!check(&wrong), "depth {depth}, wrong closer");
        assert!(!check(&text[..text.len() - 1]), "depth {depth}, unclosed");
    }
}

/// A random JSON value, with random whitespace, escapes, number forms and nesting.
fn value(rng: &mut fastrand::Rng, depth: u32, out: &mut String) {
    let space = |rng: &mut fastrand::Rng, out: &mut String| {
        if rng.u8(..4) == 0 {
            for _ in 0..rng.usize(1..3) {
                out.push([' ', '\n', '\r', '\t'][rng.usize(..4)]);
            }
        }
    };
    space(rng, out);
    match if depth > 6 { rng.u8(..5) } else { rng.u8(..7) } {
        0 => out.push_str(["true", "false", "null"][rng.usize(..3)]),
        1 => {
            if rng.bool() {
                out.push('-');
            }
            if rng.u8(..4) == 0 {
                out.push('0');
            } else {
                let shift = rng.u32(1..60);
                out.push_str(&rng.u64(1..u64::MAX >> shift).to_string());
            }
            if rng.bool() {
                out.push('.');
                out.push_str(&rng.u32(..100_000).to_string());
            }
            if rng.u8(..3) == 0 {
                out.push(if rng.bool() { 'e' } else { 'E' });
                out.push_str(["", "+", "-"][rng.usize(..3)]);
                out.push_str(&rng.u32(..400).to_string());
            }
        }
        2..=4 => string(rng, out),
        5 => {
            out.push('[');
            for n in 0..rng.usize(..5) {
                if n > 0 {
                    out.push(',');
                }
                value(rng, depth + 1, out);
            }
            space(rng, out);
            out.push(']');
        }
        _ => {
            out.push('{');
            for n in 0..rng.usize(..5) {
                if n > 0 {
                    out.push(',');
                }
                space(rng, out);
                string(rng, out);
                space(rng, out);
                out.push(':');
                value(rng, depth + 1, out);
            }
            space(rng, out);
            out.push('}');
        }
    }
    space(rng, out);
}

fn string(rng: &mut fastrand::Rng, out: &mut String) {
    out.push('"');
    for _ in 0..rng.usize(..24) {
        match rng.u8(..12) {
            0 => out.push_str(["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"][rng.usize(..8)]),
            1 => out.push_str(&format!("\\u{:04x}", rng.u16(..))),
            2 => out.push(['é', '日', '🦀', 'ß'][rng.usize(..4)]),
            _ => out.push(rng.alphanumeric()),
        }
    }
    out.push('"');
}

/// Bytes a mutation inserts or writes: JSON's own, whitespace, a control character, UTF-8.
const ALPHABET: &[&str] = &[
    "{", "}", "[", "]", "\"", ",", ":", "\\", "0", "1", "9", "-", "+", ".", "e", "E", "t", "n", "u", "a",
    "x", " ", "\n", "\t", "\u{0}", "\u{1f}", "é", "\u{7f}",
];

#[test]
fn agrees_with_serde_on_generated_and_mutated_documents() {
    let mut rng = fastrand::Rng::with_seed(0x0000_7574_7379_6e63);
    let (mut valid, mut invalid) = (0, 0);
    for _ in 0..40_000 {
        let mut text = String::new();
        value(&mut rng, 0, &mut text);
        assert!(check(&text), "the generator made invalid JSON: {text:?}");
        for _ in 0..4 {
            let mut bytes = text.clone().into_bytes();
            for _ in 0..rng.usize(1..3) {
                let at = rng.usize(..=bytes.len());
                let piece = ALPHABET[rng.usize(..ALPHABET.len())].as_bytes();
                match rng.u8(..4) {
                    0 if at < bytes.len() => drop(bytes.remove(at)),
                    1 => bytes.truncate(at),
                    2 if at < bytes.len() => drop(bytes.splice(at..at + 1, piece.iter().copied())),
                    _ => drop(bytes.splice(at..at, piece.iter().copied())),
                }
            }
            let mutated = String::from_utf8_lossy(&bytes);
            if check(&mutated) { valid += 1 } else { invalid += 1 }
        }
    }
    // Both outcomes are exercised, not only one.
    assert!(valid > 10_000 && invalid > 10_000, "{valid} valid, {invalid} invalid mutations");
}

#[test]
fn escapes_strings_and_scalars_at_every_offset() {
    // Runs of backslashes, `\u` escapes, string ends and scalars at every offset from the start,
    // so that each falls at every place of the eight-byte string scan and past its end.
    for pad in 0..140 {
        let a = "a".repeat(pad);
        for run in 0..6 {
            let slashes = "\\".repeat(run);
            for tail in ["\"]", "]", ",\"b\"]", "n\"]", "u00e9\"]", "u00g9\"]", "\u{1}\"]"] {
                check(&format!("[\"{a}{slashes}{tail}"));
            }
        }
        let spaces = " ".repeat(pad);
        for scalar in [
            "1",
            "-0.5e+7",
            "true",
            "nul",
            "01",
            "1x",
            "1\"a\"",
            "truex",
            "1 2",
            "\u{7f}",
            "é",
            "1.5.2",
            "1e5e3",
            "1e5.3",
            "-",
            "1.",
            ".5",
            "+1",
            "--1",
            "1e+",
            "-01",
            "0.0e-0",
            "1E+10",
            "1.e5",
            "-.5",
            "1e05",
            "0e0",
            "12345678901234567890",
            "fals",
            "false",
            "nulll",
            "True",
            "t",
            "1-2",
            "1+2",
            "1e+-2",
            "-0",
            "-00",
        ] {
            check(&format!("{spaces}{scalar}"));
            check(&format!("[{spaces}{scalar}]"));
            check(&format!("{{\"k{a}\":{scalar}{spaces}}}"));
        }
        check(&format!("\"{a}"));
        check(&format!("{{\"{a}\"{spaces}:\"{a}\"}}"));
    }
}

#[test]
fn agrees_with_serde_on_long_mutated_documents() {
    let mut rng = fastrand::Rng::with_seed(0x6c6f_6e67);
    let (mut valid, mut invalid) = (0, 0);
    for _ in 0..300 {
        let mut text = String::from("[");
        while text.len() < rng.usize(500..20_000) {
            if text.len() > 1 {
                text.push(',');
            }
            value(&mut rng, 0, &mut text);
        }
        text.push(']');
        assert!(check(&text), "the generator made invalid JSON");
        for _ in 0..20 {
            let mut bytes = text.clone().into_bytes();
            let at = rng.usize(..bytes.len());
            let piece = ALPHABET[rng.usize(..ALPHABET.len())].as_bytes();
            match rng.u8(..3) {
                0 => drop(bytes.remove(at)),
                1 => drop(bytes.splice(at..at + 1, piece.iter().copied())),
                _ => drop(bytes.splice(at..at, piece.iter().copied())),
            }
            if check(&String::from_utf8_lossy(&bytes)) { valid += 1 } else { invalid += 1 }
        }
    }
    assert!(valid > 500 && invalid > 1_000, "{valid} valid, {invalid} invalid mutations");
}
