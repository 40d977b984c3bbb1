//! JSON validators side by side on the same bytes: outofsync's own (the flat loop and the
//! structural scan, compiled from the crate's source), serde_json's `IgnoredAny` pass, simd-json
//! and sonic-rs, with `memcpy` and UTF-8 validation of the same bytes for scale.
//!
//!     validators FILE...
//!
//! For each file: the best time of many runs (the least disturbed by other load on the machine),
//! in µs per document and GB/s, and whether each validator refuses a set of invalid documents
//! (a "validator" that skips without checking would be fast and wrong).

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;

#[allow(dead_code)]
#[path = "../../../crates/outofsync/src/engine/validate/mod.rs"]
mod validate;

/// One way to check a document: its name and the call (true: valid JSON).
type Check = (&'static str, fn(&[u8]) -> bool);

fn checks() -> Vec<Check> {
    vec![
        ("memcpy (for scale: the same bytes copied)", |b| {
            let copy = b.to_vec();
            black_box(&copy);
            true
        }),
        ("std::str::from_utf8 (for scale)", |b| std::str::from_utf8(b).is_ok()),
        ("outofsync flat loop (`validate::flat`)", |b| {
            std::str::from_utf8(b).is_ok_and(validate::flat)
        }),
        ("outofsync structural scan (`validate::is_json`)", |b| {
            std::str::from_utf8(b).is_ok_and(validate::is_json)
        }),
        ("serde_json::from_slice::<IgnoredAny>", |b| serde_json::from_slice::<IgnoredAny>(b).is_ok()),
        ("simd_json::to_tape on a copy (it rewrites strings in place)", |b| {
            let mut copy = b.to_vec();
            simd_json::to_tape(&mut copy).is_ok()
        }),
        ("sonic_rs::from_slice::<IgnoredAny>", |b| sonic_rs::from_slice::<IgnoredAny>(b).is_ok()),
        ("sonic_rs::from_slice::<sonic_rs::Value>", |b| sonic_rs::from_slice::<sonic_rs::Value>(b).is_ok()),
    ]
}

/// Documents every validator must refuse.
const INVALID: &[&str] = &[
    r#"{"a":1,}"#,
    r#"[1 2]"#,
    r#"{"a" 1}"#,
    r#"{"a":tru}"#,
    r#"[01]"#,
    r#"["a\x"]"#,
    r#"{"a":[1,2}"#,
    r#"[1.]"#,
    r#"{"a":"b":"c"}"#,
    "[\"a\u{1}\"]",
    r#"[1,2]]"#,
];

fn best(check: fn(&[u8]) -> bool, doc: &[u8]) -> Duration {
    // Batches of about a millisecond, for about half a second; the fastest batch counts.
    let once = {
        let t = Instant::now();
        black_box(check(black_box(doc)));
        t.elapsed().max(Duration::from_nanos(50))
    };
    let batch = (Duration::from_millis(1).as_nanos() / once.as_nanos()).max(1) as u32;
    let mut fastest = Duration::MAX;
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        let t = Instant::now();
        for _ in 0..batch {
            black_box(check(black_box(doc)));
        }
        fastest = fastest.min(t.elapsed() / batch);
    }
    fastest
}

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: validators FILE...");
        std::process::exit(2);
    }
    for file in &files {
        let doc = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        println!("#### `{}` ({} bytes)\n", std::path::Path::new(file).file_name().unwrap().display(), doc.len());
        println!("| validator | µs per document | GB/s | accepts it | refuses the {} invalid ones |", INVALID.len());
        println!("|---|--:|--:|:-:|:-:|");
        for (name, check) in checks() {
            let t = best(check, &doc);
            let refuses = INVALID.iter().filter(|bad| !check(bad.as_bytes())).count();
            let is_scale = name.contains("for scale");
            println!(
                "| {name} | {:.2} | {:.2} | {} | {} |",
                t.as_secs_f64() * 1e6,
                doc.len() as f64 / t.as_secs_f64() / 1e9,
                if is_scale { "—" } else if check(&doc) { "yes" } else { "**no**" },
                if is_scale {
                    "—".to_owned()
                } else if refuses == INVALID.len() {
                    "all".to_owned()
                } else {
                    format!("**{refuses}**")
                },
            );
        }
        println!();
    }
}
