//! The workloads: which requests a lab run sends, and the fixed CPU work done on each response.
//!
//! - `io`: every request is `GET /delay/{ms}`, a slow endpoint with a tiny body. Nothing to compute;
//!   what counts is how many requests an engine can keep waiting at once, and at what cost.
//! - `cpu`: every request is `GET /json?size=…&id=i`, a fast, larger document, and every response is
//!   [`crunch`]ed: parsed into a tree, reshaped, re-serialised and hashed — a fixed amount of work.
//! - `mixed`: the two alternate (even `i`: slow, odd `i`: heavy), and one request in a hundred is a
//!   `503`, so the engines also have failures to report.
//!
//! Requests are built from their index when an engine asks for them, the same way for every engine,
//! so no engine holds the whole list in memory.

use std::hash::Hasher;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use outofsync::record::{Payload, Record};
use outofsync::request::{Input, RequestSpec};

/// Which kind of load a lab cell puts on the engines.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// A slow endpoint, many requests in flight, nothing to compute.
    Io,
    /// A fast endpoint with a larger JSON body and fixed CPU work per response.
    Cpu,
    /// Both, alternating, with one failure in a hundred.
    Mixed,
}

impl WorkloadKind {
    /// Every workload, in report order.
    pub const ALL: [WorkloadKind; 3] = [WorkloadKind::Io, WorkloadKind::Cpu, WorkloadKind::Mixed];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Io => "io",
            WorkloadKind::Cpu => "cpu",
            WorkloadKind::Mixed => "mixed",
        }
    }
}

/// The fixed parameters of the workloads, the same for every engine of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadParams {
    /// How long `/delay` waits before answering, in milliseconds.
    pub delay_ms: u64,
    /// The size of the `/json` document of the heavy requests, in bytes.
    pub doc_bytes: usize,
    /// How many times [`crunch`] hashes the re-serialised document.
    pub hash_rounds: u32,
}

/// One workload against one server: builds request `i` and does its work.
#[derive(Clone, Debug)]
pub struct Workload {
    kind: WorkloadKind,
    base: String,
    params: WorkloadParams,
}

impl Workload {
    /// The workload `kind` against the server at `base` (`http://IP:PORT`, an IP literal so that no
    /// engine needs a resolver).
    pub fn new(kind: WorkloadKind, base: &str, params: WorkloadParams) -> Self {
        Self { kind, base: base.trim_end_matches('/').to_owned(), params }
    }

    /// The URL of request `i`.
    pub fn url(&self, i: u64) -> String {
        let slow = format!("{}/delay/{}", self.base, self.params.delay_ms);
        let heavy = format!("{}/json?size={}&id={i}", self.base, self.params.doc_bytes);
        match self.kind {
            WorkloadKind::Io => slow,
            WorkloadKind::Cpu => heavy,
            WorkloadKind::Mixed if i % 100 == 99 => format!("{}/status/503", self.base),
            WorkloadKind::Mixed if i.is_multiple_of(2) => slow,
            WorkloadKind::Mixed => heavy,
        }
    }

    /// Request `i`, as every engine sends it.
    pub fn input(&self, i: u64) -> Input {
        RequestSpec::get(&self.url(i)).into()
    }

    /// Whether request `i` gets the heavy work (the part a hybrid engine hands to its CPU pool).
    pub fn is_heavy(&self, i: u64) -> bool {
        match self.kind {
            WorkloadKind::Io => false,
            WorkloadKind::Cpu => true,
            WorkloadKind::Mixed => i % 2 == 1 && i % 100 != 99,
        }
    }

    /// Does the work of one response and returns its digest, which the engines' tallies sum so that
    /// a run can prove every engine did the same work.
    ///
    /// Heavy requests are [`crunch`]ed; the others are only hashed once (a few bytes), so that their
    /// records still count in the digest.
    pub fn work(&self, record: &Record) -> u64 {
        match (&record.payload, self.is_heavy(record.i)) {
            (Payload::Json(json), true) => crunch(json, self.params.hash_rounds),
            (Payload::Json(text) | Payload::Text(text), false) => hash_rounds(text.as_bytes(), 1),
            _ => u64::from(record.status.unwrap_or(0)),
        }
    }
}

/// The CPU work of one heavy response, a fixed amount for a given document.
///
/// 1. Parse the whole body into a `serde_json::Value` tree (what most clients do with a response).
/// 2. Reshape it: keep the items whose `ok` is true, turn each into `{"n", "name" (upper-cased),
///    "score" = value × 2 + id}`, and sort them by score, highest first.
/// 3. Serialise the result again.
/// 4. Hash those bytes `rounds` times (SipHash-1-3, std's `DefaultHasher` with its fixed keys; each
///    round starts from the previous round's hash), which makes the amount of work a dial.
///
/// The hash runs in std's optimised code and the parsing in serde_json's, so the cost is nearly the
/// same in debug and release builds of outofsync. Returns the last hash; a body that is not the
/// expected document still costs its parse and returns 0.
pub fn crunch(json: &str, rounds: u32) -> u64 {
    let Ok(doc) = serde_json::from_str::<Value>(json) else { return 0 };
    let id = doc.get("id").and_then(Value::as_i64).unwrap_or(0);
    let items = doc.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut kept: Vec<(i64, Value)> = items
        .iter()
        .filter(|item| item.get("ok").and_then(Value::as_bool) == Some(true))
        .map(|item| {
            let score = item.get("value").and_then(Value::as_i64).unwrap_or(0) * 2 + id;
            let name = item.get("name").and_then(Value::as_str).unwrap_or("").to_uppercase();
            let mut out = Map::new();
            out.insert("n".into(), item.get("n").cloned().unwrap_or(Value::Null));
            out.insert("name".into(), Value::String(name));
            out.insert("score".into(), Value::from(score));
            (score, Value::Object(out))
        })
        .collect();
    kept.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
    let mut summary = Map::new();
    summary.insert("id".into(), Value::from(id));
    summary.insert("count".into(), Value::from(kept.len()));
    summary.insert("items".into(), Value::Array(kept.into_iter().map(|(_, v)| v).collect()));
    let bytes = serde_json::to_vec(&Value::Object(summary)).expect("a Value serialises");
    hash_rounds(&bytes, rounds)
}

/// Hashes `bytes` `rounds` times, each round seeded with the previous hash.
fn hash_rounds(bytes: &[u8], rounds: u32) -> u64 {
    let mut hash = 0u64;
    for _ in 0..rounds {
        // std's SipHash-1-3 with the fixed keys of `DefaultHasher::new()`: the same in every process.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        hasher.write_u64(hash);
        hasher.write(bytes);
        hash = hasher.finish();
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> WorkloadParams {
        WorkloadParams { delay_ms: 100, doc_bytes: 4096, hash_rounds: 3 }
    }

    #[test]
    fn mixed_alternates_slow_and_heavy_with_one_failure_in_a_hundred() {
        let w = Workload::new(WorkloadKind::Mixed, "http://127.0.0.1:9/", params());
        assert_eq!(w.url(0), "http://127.0.0.1:9/delay/100");
        assert_eq!(w.url(1), "http://127.0.0.1:9/json?size=4096&id=1");
        assert_eq!(w.url(99), "http://127.0.0.1:9/status/503");
        assert!(!w.is_heavy(0) && w.is_heavy(1) && !w.is_heavy(99));
        let failures = (0..1000).filter(|&i| w.url(i).ends_with("/503")).count();
        assert_eq!(failures, 10);
    }

    #[test]
    fn crunch_depends_on_the_document_and_the_rounds() {
        let doc = r#"{"id":3,"items":[{"n":0,"name":"a","value":5,"ok":true},{"n":1,"name":"b","value":9,"ok":false},
                     {"n":2,"name":"c","value":7,"ok":true}]}"#;
        let once = crunch(doc, 1);
        assert_eq!(once, crunch(doc, 1), "the work is deterministic");
        assert_ne!(once, crunch(doc, 2));
        assert_ne!(once, crunch(&doc.replace("\"id\":3", "\"id\":4"), 1));
        // Item 1 is dropped by the filter, so changing it changes nothing.
        assert_eq!(once, crunch(&doc.replace("\"value\":9", "\"value\":10"), 1));
        assert_eq!(crunch("not json", 5), 0);
    }
}
