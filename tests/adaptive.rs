//! Finding a server's speed, end to end: the real binary against `outofsync serve` running in its
//! own process (so that neither starves the other's runtime), whose hidden capacity — a rate
//! limit or a queue of workers — the client is never told. What is checked is counted on the
//! server's side (`/stats?key=K`, per second) and in the client's `--adaptive-log`: shares of
//! 429s, goodput against capacity, latency against the unloaded latency, what the controllers
//! did. The design's plan calls these A1, B1, C1 + C2 and D1; `bench/adaptive.sh` runs the whole
//! table with its time targets. The herd after a cooldown is checked here against `serve` and
//! against nginx's `limit_req`, with default options.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use serde_json::Value;

use crate::support::nginx::{Listener, Nginx};
use crate::support::{get_json, outofsync, records, spawn_first_line};

/// `outofsync serve` in a process of its own, stopped when dropped.
struct Serve {
    child: Child,
    base: String,
    port: u16,
}

impl Serve {
    fn start() -> Serve {
        let (child, first) = spawn_first_line(&["serve", "--port", "0", "--threads", "1"]);
        let base = first.trim().strip_prefix("listening on ").expect("serve names its address").to_owned();
        let port = base.rsplit(':').next().unwrap().parse().unwrap();
        Serve { child, base, port }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server-side truth of `key`, one entry per second.
    fn seconds(&self, key: &str) -> Vec<Value> {
        let (status, doc) = get_json(&self.url(&format!("/stats?key={key}")));
        assert_eq!(status, 200);
        doc["seconds"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        _ = self.child.kill();
        _ = self.child.wait();
    }
}

/// Per-second counts of the truth: (accepted, throttled, unavailable, p50 ms).
fn counts(seconds: &[Value]) -> Vec<(u64, u64, u64, Option<f64>)> {
    let last = seconds.iter().filter_map(|s| s["t"].as_u64()).max().unwrap_or(0);
    let mut out = vec![(0, 0, 0, None); last as usize + 1];
    for s in seconds {
        let t = s["t"].as_u64().unwrap() as usize;
        out[t] = (
            s["ok"].as_u64().unwrap(),
            s["throttled"].as_u64().unwrap(),
            s["unavailable"].as_u64().unwrap(),
            s["p50_ms"].as_f64(),
        );
    }
    out
}

/// The first second from which goodput stays ≥ 90 % of `capacity` for 5 s.
fn t90(counts: &[(u64, u64, u64, Option<f64>)], capacity: f64) -> Option<usize> {
    (0..counts.len().saturating_sub(5))
        .find(|&s| counts[s..s + 5].iter().all(|c| c.0 as f64 >= 0.9 * capacity))
}

fn lines(path: &Path) -> Vec<Value> {
    records(&std::fs::read(path).unwrap_or_default())
}

/// Runs `fetch` on `urls` (given on stdin) with `args`; the records.
fn fetch(urls: &[String], args: &[&str], limit: Duration) -> Vec<Value> {
    let out = outofsync()
        .timeout(limit)
        .args(["fetch", "-q", "--body", "none"])
        .args(args)
        .arg("-")
        .write_stdin(urls.join("\n") + "\n")
        .output()
        .expect("the run ends in time");
    let records = records(&out.stdout);
    assert_eq!(records.len(), urls.len(), "one record per input: {}", String::from_utf8_lossy(&out.stderr));
    records
}

fn attempts(records: &[Value]) -> u64 {
    records.iter().map(|r| r["attempts"].as_u64().unwrap()).sum()
}

#[test]
fn after_a_cooldown_serve_is_not_met_by_a_herd_with_default_options() {
    // The run of the issue: 300 requests, --retries 20 and nothing else, against 20 r/s with a
    // burst of 5 answering 429 + Retry-After: 1. Every cooldown used to end in a burst of 429s
    // (1,337 of them in all).
    let serve = Serve::start();
    let urls: Vec<String> =
        (0..300).map(|n| serve.url(&format!("/ratelimit?rps=20&burst=6&key=herd&n={n}"))).collect();
    let records = fetch(&urls, &["--retries", "20"], Duration::from_secs(120));
    assert!(records.iter().all(|r| r["ok"] == true), "every request ends well");
    let counts = counts(&serve.seconds("herd"));
    let opening = counts[0].1;
    let later: u64 = counts[1..].iter().map(|c| c.1).sum();
    let attempts = attempts(&records);
    // -c, and once more each request the burst let through before the first 429 was read: the
    // client cannot know of the cooldown before that.
    assert!(opening <= 64 + 6 + 1, "the opening burst is -c and the burst's re-sends at most: {opening}");
    assert!(later * 20 <= attempts, "after the opening burst, {later} of {attempts} attempts were 429s");
}

#[test]
fn after_a_cooldown_nginx_limit_req_is_not_met_by_a_herd_with_default_options() {
    let Some(nginx) = Nginx::start() else { return };
    let urls: Vec<String> =
        (0..300).map(|n| nginx.url(Listener::Ratelimit, &format!("/small.json?n={n}"))).collect();
    let records = fetch(&urls, &["--retries", "20"], Duration::from_secs(120));
    assert!(records.iter().all(|r| r["ok"] == true), "every request ends well");
    let entries = nginx.requests(Listener::Ratelimit);
    assert_eq!(entries.len() as u64, attempts(&records), "every attempt is in nginx's log");
    let start = entries.iter().map(|e| e.time).fold(f64::INFINITY, f64::min);
    let opening = entries.iter().filter(|e| e.status == 429 && e.time < start + 1.0).count();
    let later = entries.iter().filter(|e| e.status == 429 && e.time >= start + 1.0).count();
    // -c, and once more each request nginx let through (burst 5, and a token of its rate) before
    // the first 429 was read: the client cannot know of the cooldown before that. CI saw 65 once.
    assert!(opening <= 64 + 5 + 1, "the opening burst is -c and the burst's re-sends at most: {opening}");
    assert!(
        later * 20 <= entries.len(),
        "after the opening burst, {later} of {} attempts were 429s",
        entries.len()
    );
    // 300 requests at 20/s after a burst of 5 take about 15 s: at most 1.3 × that (and a second).
    let end = entries.iter().map(|e| e.time).fold(0.0, f64::max);
    assert!(
        end - start <= 1.3 * 15.0 + 1.0,
        "the run took {:.1} s (it took 66.8 s with the herd)",
        end - start
    );
}

#[test]
fn adaptive_finds_nginx_limit_req_and_holds_it() {
    // nginx's limit_req (20 r/s, burst 5, 429 + Retry-After: 1), with --adaptive and a wide -c:
    // the host's rate is learned from what nginx accepts, and after the opening burst few
    // attempts are refused.
    let Some(nginx) = Nginx::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("adaptive.jsonl");
    let urls: Vec<String> =
        (0..300).map(|n| nginx.url(Listener::Ratelimit, &format!("/small.json?a={n}"))).collect();
    let args = ["--adaptive", "-c", "512", "--retries", "20", "--adaptive-log", log.to_str().unwrap()];
    let records = fetch(&urls, &args, Duration::from_secs(120));
    assert!(records.iter().all(|r| r["ok"] == true), "every request ends well");
    let entries = nginx.requests(Listener::Ratelimit);
    assert_eq!(entries.len() as u64, attempts(&records), "every attempt is in nginx's log");
    let start = entries.iter().map(|e| e.time).fold(f64::INFINITY, f64::min);
    let end = entries.iter().map(|e| e.time).fold(0.0, f64::max);
    let later = entries.iter().filter(|e| e.status == 429 && e.time >= start + 1.0).count();
    assert!(
        later * 20 <= entries.len(),
        "after the opening burst, {later} of {} attempts were 429s",
        entries.len()
    );
    // 300 requests at 20/s after a burst of 5: about 15 s; 1.3 × that, and a second of slack.
    assert!(end - start <= 1.3 * 15.0 + 1.0, "the run took {:.1} s", end - start);
    let log = lines(&log);
    assert!(log.iter().any(|l| l["event"] == "throttle"), "the rate was found by throttling");
    let r = log.iter().rev().find_map(|l| l["r"].as_f64()).expect("R is set");
    assert!((5.0..=25.0).contains(&r), "R {r:.1} near nginx's 20 r/s");
}

#[test]
fn a_hidden_rate_limit_is_found_and_held_with_few_429s() {
    // A1 at 200 rps, 20 ms: 4,000 requests, about 20 s at capacity.
    let serve = Serve::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("adaptive.jsonl");
    let urls: Vec<String> =
        (0..4000).map(|n| serve.url(&format!("/ratelimit?rps=200&ms=20&key=a1&n={n}"))).collect();
    let args = ["--adaptive", "-c", "512", "--retries", "8", "--adaptive-log", log.to_str().unwrap()];
    let records = fetch(&urls, &args, Duration::from_secs(120));
    assert!(records.iter().all(|r| r["ok"] == true));
    let counts = counts(&serve.seconds("a1"));
    let t90 = t90(&counts, 200.0).expect("goodput reaches 90 % of the hidden rate");
    let steady = &counts[t90..counts.len() - 1];
    let (ok, throttled): (u64, u64) = steady.iter().fold((0, 0), |(o, t), c| (o + c.0, t + c.1));
    // The design's target is 1 % (bench/adaptive.sh measures it on a quiet machine); beside the
    // suite's other tests on two cores a late timer bunches sends, so the test holds the policy
    // to 5 % — a plain AIMD window draws about 79 % here.
    assert!(throttled * 20 <= ok + throttled, "after T90 ({t90} s), {throttled} 429s of {}", ok + throttled);
    let mean = ok as f64 / steady.len() as f64;
    assert!(mean >= 0.9 * 200.0, "goodput {mean:.1}/s after T90");
    let log = lines(&log);
    assert!(log.iter().any(|l| l["event"] == "throttle"), "the rate was found by throttling");
    assert!(log.iter().all(|l| l["host"] == serve.base), "one host");
}

#[test]
fn a_hidden_queue_is_filled_without_a_latency_blow_up() {
    // B1: 8 workers of 50 ms (× 1 + 0.2·Exp(1)): about 133 requests a second; latency grows once
    // more than 8 are in flight.
    let serve = Serve::start();
    let unloaded: Vec<String> =
        (0..40).map(|n| serve.url(&format!("/capacity?c=8&ms=50&jitter=0.2&key=b1-alone&n={n}"))).collect();
    fetch(&unloaded, &["-c", "1"], Duration::from_secs(60));
    let base = counts(&serve.seconds("b1-alone")).iter().filter_map(|c| c.3).fold(f64::INFINITY, f64::min);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("adaptive.jsonl");
    let urls: Vec<String> =
        (0..2400).map(|n| serve.url(&format!("/capacity?c=8&ms=50&jitter=0.2&key=b1&n={n}"))).collect();
    let args = ["--adaptive", "-c", "512", "--retries", "8", "--adaptive-log", log.to_str().unwrap()];
    let records = fetch(&urls, &args, Duration::from_secs(120));
    assert!(records.iter().all(|r| r["ok"] == true && r["attempts"] == 1), "no 503, no timeout");
    let counts = counts(&serve.seconds("b1"));
    let capacity = 8.0 / (0.050 * 1.2);
    let t90 = t90(&counts, capacity).expect("goodput reaches 90 % of the hidden capacity");
    let steady = &counts[t90 + 2..counts.len() - 1];
    let mut p50s: Vec<f64> = steady.iter().filter_map(|c| c.3).collect();
    p50s.sort_by(f64::total_cmp);
    let ratio = p50s[p50s.len() / 2] / base;
    // The design's target is 1.6 × (bench/adaptive.sh measures it); on a loaded machine the
    // unloaded figure itself moves, so the test guards against the blow-up only: with 512 in
    // flight and no window, the median would be dozens of times the unloaded one.
    assert!(ratio <= 2.5, "p50 {ratio:.2} × the unloaded {base:.1} ms");
    let log = lines(&log);
    let w = log.iter().rev().find_map(|l| l["w"].as_f64()).unwrap();
    assert!((8.0..=32.0).contains(&w), "W settles above the workers and below a queue: {w}");
}

#[test]
fn a_rate_step_down_and_back_up_is_followed() {
    // C1 + C2: 200 rps, halved from 15 s to 30 s, then whole again.
    let serve = Serve::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("adaptive.jsonl");
    let urls: Vec<String> = (0..9000)
        .map(|n| serve.url(&format!("/ratelimit?rps=200&ms=20&schedule=15:0.5,30:1&key=c&n={n}")))
        .collect();
    let args = ["--adaptive", "-c", "512", "--retries", "8", "--adaptive-log", log.to_str().unwrap()];
    let records = fetch(&urls, &args, Duration::from_secs(150));
    assert!(records.iter().all(|r| r["ok"] == true));
    let counts = counts(&serve.seconds("c"));
    let down: u64 = counts[15..20].iter().map(|c| c.1).sum();
    assert!(down <= 100, "{down} 429s in the 5 s after the step down");
    let log = lines(&log);
    // The log's clock starts with the client, a moment before the server's first request.
    let r_at =
        |t: f64| log.iter().filter(|l| l["t"].as_f64().unwrap() <= t).rev().find_map(|l| l["r"].as_f64());
    let r = r_at(17.5).expect("R is set by then");
    assert!(r <= 110.0, "R {r:.1} 2 s after the step down");
    let up = (30..counts.len().min(55)).find(|&s| counts[s].0 >= 180);
    assert!(up.is_some(), "goodput back to 180/s within 25 s of the step up");
}

#[test]
fn a_throttling_host_leaves_another_at_full_speed() {
    // D1: a.test limits to 50 rps; b.test is a queue of 32 workers of 50 ms (640/s). The input
    // has them 1 to 12, so that b.test can be fetched as fast as it answers.
    let serve = Serve::start();
    let port = serve.port;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("adaptive.jsonl");
    let urls: Vec<String> = (0..10_400)
        .map(|n| {
            if n % 13 == 0 {
                format!("http://a.test:{port}/ratelimit?rps=50&key=d1a&n={n}")
            } else {
                format!("http://b.test:{port}/capacity?c=32&ms=50&key=d1b&n={n}")
            }
        })
        .collect();
    let (a, b) = (format!("a.test:{port}:127.0.0.1"), format!("b.test:{port}:127.0.0.1"));
    let args = [
        "--adaptive",
        "-c",
        "512",
        "--retries",
        "8",
        "--resolve",
        &a,
        "--resolve",
        &b,
        "--adaptive-log",
        log.to_str().unwrap(),
    ];
    let records = fetch(&urls, &args, Duration::from_secs(150));
    assert!(records.iter().all(|r| r["ok"] == true));
    let a_counts = counts(&serve.seconds("d1a"));
    assert!(a_counts.iter().map(|c| c.1).sum::<u64>() > 0, "a.test throttled");
    let b_counts = counts(&serve.seconds("d1b"));
    let t90 = t90(&b_counts, 640.0).expect("b.test reaches 90 % of its capacity while a.test throttles");
    assert!(b_counts.iter().map(|c| c.2).sum::<u64>() == 0, "no 503 from b.test");
    let log = lines(&log);
    let b_host = format!("http://b.test:{port}");
    let b_events: Vec<&Value> = log.iter().filter(|l| l["host"] == b_host.as_str()).collect();
    assert!(
        b_events.iter().all(|l| l["event"] != "throttle" && l["r"].is_null()),
        "a.test's throttling never reaches b.test"
    );
    let _ = t90;
}
