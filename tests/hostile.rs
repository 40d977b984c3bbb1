//! Hostile servers: every misbehaviour ends as a record with a clear error kind, in bounded time,
//! without a partial body passed off as ok, and without disturbing the other requests of the run.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::hostile::{CASES, Hostile};
use crate::support::tls::TlsServer;
use crate::support::{by_i, outofsync, records, server};

/// What a case must end as: the error kind (`None`: ok) and words its message must hold.
fn expected(path: &str) -> (Option<&'static str>, &'static str) {
    match path {
        "/idle" => (Some("timeout"), "--read-timeout"),
        "/drip" | "/endless" => (Some("timeout"), "--timeout"),
        "/flood" => (Some("too_large"), "on the wire"),
        "/huge-length" => (Some("too_large"), "Content-Length of 10000000000000 bytes"),
        "/bomb" | "/bomb-chain" => (Some("too_large"), "once decompressed"),
        "/three-codings" => (Some("decode"), "3 content-codings stacked"),
        "/bad-gzip" => (Some("decode"), "bad gzip data"),
        "/bad-chunk" => (Some("decode"), "invalid HTTP in the body after 0 bytes: Invalid chunk size"),
        "/short" => (Some("io"), "closed after 10 bytes"),
        "/two-lengths" | "/heat" => (Some("decode"), "invalid HTTP"),
        "/big-header" => (Some("decode"), "too large"),
        "/many-headers" => (Some("decode"), "too large"),
        "/loop" | "/loop-a" => (Some("redirect"), "redirect loop"),
        "/file" => (Some("redirect"), "refused redirect to file"),
        "/gopher" => (Some("redirect"), "refused redirect to gopher"),
        "/close" | "/to-close" | "/once" | "/keep" => (None, ""),
        other => panic!("no expectation for {other}"),
    }
}

fn assert_failed(r: &Value, kind: &str, words: &str) {
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["kind"], kind, "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains(words), "{:?}: {message:?} should say {words:?}", r["url"]);
    for body in ["json", "text", "body_b64"] {
        assert!(r.get(body).is_none(), "no partial body in a failed record: {r}");
    }
}

#[test]
fn every_hostile_case_ends_as_its_error_kind_in_bounded_time_and_nothing_else_breaks() {
    let (hostile, good) = (Hostile::start(), server());
    let (self_signed, other_name) = (TlsServer::start(&["localhost"]), TlsServer::start(&["other.test"]));
    let mut input: Vec<String> = CASES.iter().map(|(path, _)| hostile.url(path)).collect();
    input.extend([self_signed.url(), other_name.url(), good.url("/json?id=42")]);
    let started = Instant::now();
    let run = outofsync()
        .args(["fetch", "-q", "-c", "64", "--retries", "0", "--max-body", "1MiB"])
        .args(["--timeout", "2s", "--read-timeout", "500ms", "--connect-timeout", "2s"])
        .args(["--resolve", &self_signed.resolve(), "--resolve", &other_name.resolve(), "-"])
        .write_stdin(input.join("\n"))
        .output()
        .unwrap();
    let wall = started.elapsed();
    assert_eq!(run.status.code(), Some(1), "{}", String::from_utf8_lossy(&run.stderr));
    let records = records(&run.stdout);
    assert_eq!(records.len(), input.len(), "one record per input, whatever the server did");

    for (i, (path, what)) in CASES.iter().enumerate() {
        let r = by_i(&records, i as u64);
        match expected(path) {
            (Some(kind), words) => assert_failed(r, kind, words),
            (None, _) => assert_eq!(r["ok"], true, "{path} ({what}): {r}"),
        }
        let elapsed = r["elapsed_ms"].as_f64().unwrap();
        // The lower bounds prove which timer fired; the upper ones that each case ends, with room
        // for a loaded machine.
        let bound = match *path {
            "/idle" => 500.0..2_000.0,
            "/drip" | "/endless" => 2_000.0..3_500.0,
            _ => 0.0..2_000.0,
        };
        assert!(bound.contains(&elapsed), "{path} ({what}) took {elapsed} ms, expected {bound:?}");
    }
    let n = CASES.len() as u64;
    for tls in [by_i(&records, n), by_i(&records, n + 1)] {
        assert_failed(tls, "tls", "certificate");
    }
    let good = by_i(&records, n + 2);
    assert_eq!((good["ok"].as_bool(), good["json"]["id"].as_u64()), (Some(true), Some(42)), "{good}");
    assert!(wall < Duration::from_secs(20), "the whole run took {wall:?}");
}

#[test]
fn cut_off_bodies_are_retried_and_the_history_says_why() {
    let (hostile, good) = (Hostile::start(), server());
    let run = outofsync()
        .args(["fetch", "-q", "--retries", "2", "--backoff", "1ms", "--read-timeout", "500ms"])
        .args([hostile.url("/short"), hostile.url("/idle"), hostile.url("/heat"), good.url("/json")])
        .output()
        .unwrap();
    let records = records(&run.stdout);
    let short = by_i(&records, 0);
    assert_failed(short, "io", "(after 3 attempts)");
    let history = short["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{short}");
    assert!(history.iter().all(|h| h["error"] == "io" && h.get("status").is_none()), "{short}");
    let idle = by_i(&records, 1);
    assert_failed(idle, "timeout", "(after 3 attempts)");
    assert!(idle["elapsed_ms"].as_f64().unwrap() >= 1500.0, "three idle timeouts of 500 ms: {idle}");
    let heat = by_i(&records, 2);
    assert_failed(heat, "decode", "invalid HTTP");
    assert_eq!(heat["attempts"], 1, "a garbled response is not retried: {heat}");
    assert_eq!(by_i(&records, 3)["ok"], true);
}

#[test]
fn a_request_on_a_stale_connection_is_sent_again_on_a_fresh_one_and_counted() {
    // Eight connections are opened and answered, and wait in the pool; each of the next eight
    // requests takes one of them, which the server then drops. The resend must not take another
    // pooled connection (all eight are as stale): it gets a fresh one and its answer. It is a
    // send, so the record counts it and shows it, but not a retry: `--retries 0` allows it.
    let hostile = Hostile::start();
    let input: String = (0..16).map(|_| format!("{}\n", hostile.url("/once"))).collect();
    let run = outofsync()
        .args(["fetch", "-q", "-c", "8", "--retries", "0", "-"])
        .write_stdin(input)
        .output()
        .unwrap();
    let records = records(&run.stdout);
    assert_eq!(records.len(), 16);
    let mut resent = 0;
    for r in &records {
        assert_eq!(r["json"]["once"], true, "{r}");
        match r["attempts"].as_u64() {
            Some(1) => assert!(r.get("history").is_none(), "{r}"),
            Some(2) => {
                resent += 1;
                let history = r["history"].as_array().unwrap();
                assert_eq!(history.len(), 1, "{r}");
                assert_eq!(history[0]["stale_connection"], true, "{r}");
                assert_eq!(history[0]["error"], "io", "{r}");
            }
            _ => panic!("one send, or one more after a stale connection: {r}"),
        }
    }
    assert_eq!(resent, 8, "each of the second eight met a connection the server dropped");
}

#[test]
fn keep_alive_connections_are_reused_and_no_more_are_opened_than_requests_in_flight() {
    let hostile = Hostile::start();
    let input: String = (0..60).map(|_| format!("{}\n", hostile.url("/keep"))).collect();
    for concurrency in [1usize, 4] {
        let run = outofsync()
            .args(["fetch", "-q", "-c", &concurrency.to_string(), "-"])
            .write_stdin(input.clone())
            .output()
            .unwrap();
        let records = records(&run.stdout);
        assert_eq!(records.len(), 60);
        let mut conns: Vec<u64> =
            records.iter().map(|r| r["json"]["conn"].as_u64().expect("answered")).collect();
        conns.sort_unstable();
        conns.dedup();
        assert!(conns.len() <= concurrency, "-c {concurrency}: {} connections for 60 requests", conns.len());
        let most = records.iter().map(|r| r["json"]["n"].as_u64().unwrap()).max().unwrap();
        assert!(
            most >= 60 / concurrency as u64,
            "-c {concurrency}: at most {most} requests on one connection"
        );
    }
}

#[test]
fn a_server_that_closes_after_every_response_costs_no_request() {
    let hostile = Hostile::start();
    // Half of them redirect first: the redirect's connection goes back to the pool and is taken
    // again at once, before its close has arrived.
    let input: String = (0..400)
        .map(|n| format!("{}\n", hostile.url(if n % 2 == 0 { "/close" } else { "/to-close" })))
        .collect();
    // At 32 in flight, many connections closing under the client wait in the pool at once.
    for concurrency in ["1", "4", "32"] {
        let run = outofsync()
            .args(["fetch", "-q", "-c", concurrency, "--retries", "0", "-"])
            .write_stdin(input.clone())
            .output()
            .unwrap();
        let records = records(&run.stdout);
        assert_eq!(records.len(), 400);
        for r in &records {
            assert_eq!(r["json"]["closed"], true, "-c {concurrency}: {r}");
        }
    }
}
