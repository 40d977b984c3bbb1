//! The controllers against servers of hidden capacity (`models`), through the whole engine —
//! limits, pace, window, retries — on tokio's paused clock: the design's test plan, layer (a).
//! Each scenario runs tens of seconds of virtual time in well under a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::models::{Kind, Model, Models, Second};
use super::{AdaptiveConfig, HostReport};
use crate::engine::config::{Config, RetryPolicy};
use crate::engine::run::Engine;
use crate::record::Record;
use crate::request::RequestSpec;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A configuration for these runs: `concurrency`, retries enough that every request ends well,
/// and a tiny backoff so that waits are the servers' and the controllers' doing.
fn config(concurrency: usize, adaptive: bool) -> Config {
    Config {
        concurrency,
        retry: RetryPolicy { retries: 20, backoff: ms(1), ..RetryPolicy::default() },
        adaptive: adaptive.then(AdaptiveConfig::default),
        ..Config::default()
    }
}

/// What a run did.
struct Run {
    records: Vec<Record>,
    elapsed: Duration,
    engine: Arc<Engine<Models>>,
}

impl Run {
    fn report(&self, host: &str) -> HostReport {
        let origin = format!("http://{host}");
        self.engine.limits.reports().into_iter().find(|r| r.host == origin).expect("the host was sent to")
    }

    fn attempts(&self) -> u64 {
        self.records.iter().map(|r| u64::from(r.attempts)).sum()
    }
}

/// Runs requests `url(i)` through the engine with `workers` tasks (the admission slots of a real
/// run) until `n` requests have ended or `limit` of virtual time has passed.
async fn drive(
    engine: Arc<Engine<Models>>,
    url: impl Fn(u64) -> String + Send + Sync + 'static,
    n: u64,
    workers: usize,
    limit: Duration,
) -> Run {
    let start = Instant::now();
    let (next, url) = (Arc::new(AtomicU64::new(0)), Arc::new(url));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (engine, next, url) = (engine.clone(), next.clone(), url.clone());
            tokio::spawn(async move {
                let mut records = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || start.elapsed() >= limit {
                        return records;
                    }
                    let spec = RequestSpec::get(&url(i)).unwrap();
                    records.push(engine.execute(i, spec.into()).await.record);
                }
            })
        })
        .collect();
    let mut records = Vec::new();
    for task in tasks {
        records.extend(task.await.unwrap());
    }
    Run { records, elapsed: start.elapsed(), engine }
}

/// Accepted answers per second over seconds `from..to` of a model's truth.
fn goodput(seconds: &std::collections::BTreeMap<u64, Second>, from: u64, to: u64) -> f64 {
    let ok: u32 = (from..to).map(|s| seconds.get(&s).map_or(0, |s| s.ok)).sum();
    f64::from(ok) / (to - from) as f64
}

fn throttled(seconds: &std::collections::BTreeMap<u64, Second>, from: u64, to: u64) -> u32 {
    (from..to).map(|s| seconds.get(&s).map_or(0, |s| s.throttled)).sum()
}

fn answered(seconds: &std::collections::BTreeMap<u64, Second>, from: u64, to: u64) -> u32 {
    (from..to).map(|s| seconds.get(&s).map_or(0, |s| s.ok + s.throttled + s.unavailable)).sum()
}

/// The first second from which goodput stays ≥ 90 % of `capacity` for 5 s (T90).
fn t90(seconds: &std::collections::BTreeMap<u64, Second>, capacity: f64) -> Option<u64> {
    let last = *seconds.keys().last()?;
    (0..last.saturating_sub(5))
        .find(|&s| (s..s + 5).all(|t| f64::from(seconds.get(&t).map_or(0, |x| x.ok)) >= 0.9 * capacity))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::test(start_paused = true)]
async fn thirty_simultaneous_429s_make_exactly_one_cut() {
    let models =
        Models::one("a.test", Model::new(Kind::Bucket { rate: 1.0, burst: 1.0, retry_after: false }));
    let mut config = config(64, false);
    config.retry.retries = 0;
    let engine = Arc::new(Engine::new(config, models));
    let run = drive(engine, |i| format!("http://a.test/{i}"), 31, 31, secs(10)).await;
    let report = run.report("a.test");
    assert_eq!((report.attempts, report.throttled), (31, 30));
    assert_eq!(report.cuts.throttle, 1, "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn a_short_retry_after_delays_its_request_and_a_long_one_pauses_the_host() {
    for (retry_after, held) in [(1, false), (5, true)] {
        let window = Kind::Window { limit: 1, window: secs(retry_after) };
        let models = Models::one("a.test", Model::new(window).latency(ms(1)));
        let engine = Arc::new(Engine::new(config(64, false), models));
        let first = {
            let engine = engine.clone();
            tokio::spawn(async move {
                engine.execute(0, RequestSpec::get("http://a.test/0").unwrap().into()).await
            })
        };
        assert!(first.await.unwrap().record.ok);
        // The window is spent: a 429 with `Retry-After`, and another request right behind it.
        let (throttled, behind) = {
            let (a, b) = (engine.clone(), engine.clone());
            let one = tokio::spawn(async move {
                a.execute(1, RequestSpec::get("http://a.test/1").unwrap().into()).await
            });
            tokio::time::sleep(ms(100)).await;
            let asked = Instant::now();
            let other = b.execute(2, RequestSpec::get("http://a.test/2").unwrap().into()).await;
            (one.await.unwrap().record, (other.record, asked.elapsed()))
        };
        assert!(throttled.ok && throttled.attempts >= 2, "{throttled:?}");
        // How long the other request waited for its first turn: its record's time starts there.
        let (record, waited) = behind;
        let queued = waited.saturating_sub(Duration::from_secs_f64(record.elapsed_ms / 1000.0));
        if held {
            assert!(queued >= secs(4), "a Retry-After of 5 s holds the whole host: {queued:?}");
            assert!(engine.limits.reports()[0].cuts.pause >= 1);
        } else {
            assert!(
                queued < ms(100),
                "a Retry-After of 1 s holds only its own request: {queued:?} {record:?}"
            );
            assert_eq!(engine.limits.reports()[0].cuts.pause, 0);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn after_a_cooldown_requests_resume_paced_not_all_at_once() {
    // The run of the issue: 300 requests, default options (-c 64), against a limit_req of 20 r/s
    // with a burst of 5 answering 429 with `Retry-After: 1`. It took 66.8 s and drew 1,337 429s;
    // the ideal is (300 − 6) / 20 ≈ 14.7 s.
    let limiter = Kind::Bucket { rate: 20.0, burst: 6.0, retry_after: true };
    let models = Models::one("a.test", Model::new(limiter).latency(ms(1)));
    let engine = Arc::new(Engine::new(config(64, false), models));
    let run = drive(engine.clone(), |i| format!("http://a.test/{i}"), 300, 256, secs(300)).await;
    assert!(run.records.iter().all(|r| r.ok), "every request ends well");
    let seconds = engine.transport.get("a.test").seconds();
    let opening: u32 = throttled(&seconds, 0, 1);
    let later: u32 = throttled(&seconds, 1, 1000);
    let attempts = run.attempts();
    let ideal = 294.0 / 20.0;
    assert!(opening <= 64, "the opening burst is -c at most: {opening}");
    assert!(
        f64::from(later) <= 0.05 * attempts as f64,
        "after the opening burst, ≤ 5 % of {attempts} attempts are 429s: {later}"
    );
    assert!(run.elapsed.as_secs_f64() <= 1.3 * ideal, "{:?} against an ideal of {ideal:.1} s", run.elapsed);
}

#[tokio::test(start_paused = true)]
async fn adaptive_mode_starts_small_and_draws_few_429s_from_the_same_limiter() {
    let limiter = Kind::Bucket { rate: 20.0, burst: 6.0, retry_after: true };
    let models = Models::one("a.test", Model::new(limiter).latency(ms(1)));
    let engine = Arc::new(Engine::new(config(64, true), models));
    let run = drive(engine.clone(), |i| format!("http://a.test/{i}"), 300, 256, secs(300)).await;
    assert!(run.records.iter().all(|r| r.ok));
    let seconds = engine.transport.get("a.test").seconds();
    let all = throttled(&seconds, 0, 1000);
    assert!(f64::from(all) <= 0.05 * run.attempts() as f64, "{all} 429s of {} attempts", run.attempts());
    assert!(run.elapsed.as_secs_f64() <= 1.3 * 294.0 / 20.0, "{:?}", run.elapsed);
}

#[tokio::test(start_paused = true)]
async fn a_token_bucket_is_found_and_held_with_few_429s() {
    // A1 at 200 rps, 20 ms.
    let limiter = Kind::Bucket { rate: 200.0, burst: 200.0, retry_after: true };
    let models = Models::one("a.test", Model::new(limiter));
    let engine = Arc::new(Engine::new(config(512, true), models));
    drive(engine.clone(), |i| format!("http://a.test/{i}"), u64::MAX, 2048, secs(60)).await;
    let seconds = engine.transport.get("a.test").seconds();
    let t90 = t90(&seconds, 200.0).expect("reaches 90 % of capacity");
    assert!(t90 <= 10, "T90 {t90} s");
    let steady = t90 + 5;
    let share = f64::from(throttled(&seconds, steady, 59)) / f64::from(answered(&seconds, steady, 59));
    assert!(share <= 0.01, "429s after T90: {:.2} %", 100.0 * share);
    let g = goodput(&seconds, steady, 59);
    assert!(g >= 0.95 * 200.0, "goodput {g:.1}/s");
}

#[tokio::test(start_paused = true)]
async fn a_fixed_window_is_found_and_its_spent_end_is_not_read_as_its_rate() {
    // A3: 200 per one-second window, 20 ms. Its quota is spent early in each window, so the span
    // since a cut can fall where it accepts nothing: read as the host's rate, it halved R.
    let limiter = Kind::Window { limit: 200, window: secs(1) };
    let models = Models::one("a.test", Model::new(limiter));
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut config = config(512, true);
    config.adaptive_log = Some(super::ControllerLog::new(SharedBuf(log.clone())));
    let engine = Arc::new(Engine::new(config, models));
    drive(engine.clone(), |i| format!("http://a.test/{i}"), u64::MAX, 2048, secs(60)).await;
    let seconds = engine.transport.get("a.test").seconds();
    let t90 = t90(&seconds, 200.0).expect("reaches 90 % of capacity");
    assert!(t90 <= 10, "T90 {t90} s");
    let g = goodput(&seconds, t90, 59);
    assert!(g >= 0.95 * 200.0, "goodput {g:.1}/s");
    let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let low = lines
        .iter()
        .filter(|l| l["event"] == "throttle" && l["t"].as_f64().unwrap() > 5.0)
        .filter_map(|l| l["r"].as_f64())
        .fold(f64::INFINITY, f64::min);
    assert!(low >= 0.7 * 200.0, "a cut to R {low:.1} after the opening");
}

/// Prints a run's controller log (for a human looking into a failure).
#[allow(dead_code)]
fn print_log(log: &Arc<std::sync::Mutex<Vec<u8>>>) {
    println!("{}", String::from_utf8_lossy(&log.lock().unwrap()));
}

#[tokio::test(start_paused = true)]
async fn a_queueing_server_is_filled_without_a_latency_blow_up() {
    // B1: 8 workers of 50 ms: 160 requests a second, and latency grows beyond 8 in flight. The
    // service time varies a little (× 1 + 0.2·Exp(1)), as a real one does: with a constant one,
    // latency takes two values only (served at once, or after one wait), and no median of two
    // values settles at 1.5 × the baseline.
    let queue = Kind::Queue { workers: 8, service: ms(50), jitter: 0.2, queue: 10_000, errors: 0.0 };
    let models = Models::one("b.test", Model::new(queue));
    let engine = Arc::new(Engine::new(config(512, true), models));
    let run = drive(engine.clone(), |i| format!("http://b.test/{i}"), u64::MAX, 2048, secs(40)).await;
    let seconds = engine.transport.get("b.test").seconds();
    let t90 = t90(&seconds, 8.0 / (0.050 * 1.2)).expect("reaches 90 % of capacity");
    assert!(t90 <= 5, "T90 {t90} s");
    let g = goodput(&seconds, t90 + 5, 39);
    let capacity = 8.0 / (0.050 * 1.2);
    assert!(g >= 0.95 * capacity, "goodput {g:.1}/s of {capacity:.1}");
    let latencies: Vec<f64> = (t90 + 5..39).flat_map(|s| seconds[&s].latencies_ms.clone()).collect();
    // Unloaded, the median service time is 50 ms × (1 + 0.2 ln 2).
    let ratio = median(latencies) / (50.0 * (1.0 + 0.2 * 2f64.ln()));
    assert!(ratio <= 1.6, "p50 {ratio:.2} × unloaded");
    let report = run.report("b.test");
    assert!(report.overloaded == 0 && report.throttled == 0, "{report:?}");
    assert!((8.0..=24.0).contains(&report.window.unwrap()), "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn one_percent_random_503s_do_not_collapse_the_window() {
    // B4: a loss-based limiter cuts on every 503 and never recovers; the 2 % rule ignores them.
    let queue = Kind::Queue { workers: 32, service: ms(50), jitter: 0.0, queue: 10_000, errors: 0.01 };
    let models = Models::one("b.test", Model::new(queue));
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut config = config(512, true);
    config.adaptive_log = Some(super::ControllerLog::new(SharedBuf(log.clone())));
    let engine = Arc::new(Engine::new(config, models));
    let run = drive(engine.clone(), |i| format!("http://b.test/{i}"), u64::MAX, 2048, secs(40)).await;
    let seconds = engine.transport.get("b.test").seconds();
    let capacity = 640.0 * 0.99;
    let g = goodput(&seconds, 10, 39);
    assert!(g >= 0.95 * capacity, "goodput {g:.1}/s of {capacity}");
    assert!(run.report("b.test").window.unwrap() >= 16.0, "{:?}", run.report("b.test"));
}

#[tokio::test(start_paused = true)]
async fn a_rate_step_down_is_absorbed_within_two_seconds_and_a_step_up_found_within_25() {
    // C1 + C2: 200 → 100 rps at 30 s, back to 200 at 60 s.
    let limiter = Kind::Bucket { rate: 200.0, burst: 200.0, retry_after: true };
    let models = Models::one("a.test", Model::new(limiter).step(30.0, 0.5).step(60.0, 1.0));
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut config = config(512, true);
    config.adaptive_log = Some(super::ControllerLog::new(SharedBuf(log.clone())));
    let engine = Arc::new(Engine::new(config, models));
    drive(engine.clone(), |i| format!("http://a.test/{i}"), u64::MAX, 2048, secs(90)).await;
    let seconds = engine.transport.get("a.test").seconds();
    assert!(throttled(&seconds, 30, 35) <= 100, "{} 429s in [30, 35)", throttled(&seconds, 30, 35));
    let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let r_at = |t: f64| {
        lines.iter().filter(|l| l["t"].as_f64().unwrap() <= t).filter_map(|l| l["r"].as_f64()).next_back()
    };
    let r = r_at(32.0).expect("R is set by then");
    assert!(r <= 110.0, "R {r:.1} at 32 s");
    let up = (60..85).find(|&s| seconds.get(&s).is_some_and(|x| f64::from(x.ok) >= 180.0));
    assert!(up.is_some(), "goodput back to 180/s within 25 s of the step up");
    let after = f64::from(throttled(&seconds, 60, 90)) / f64::from(answered(&seconds, 60, 90));
    assert!(after <= 0.01, "{:.2} % 429s while finding the new rate", after * 100.0);
}

#[tokio::test(start_paused = true)]
async fn hosts_share_nothing_a_throttling_host_leaves_the_other_at_full_speed() {
    // D1: a.test limits to 50 rps; b.test is a queue of 32 workers of 50 ms (640/s).
    let a = Model::new(Kind::Bucket { rate: 50.0, burst: 50.0, retry_after: true });
    let b = Model::new(Kind::Queue { workers: 32, service: ms(50), jitter: 0.0, queue: 10_000, errors: 0.0 });
    let models = Models::one("a.test", a).with("b.test", b);
    let engine = Arc::new(Engine::new(config(512, true), models));
    let url = |i: u64| {
        if i.is_multiple_of(2) { format!("http://a.test/{i}") } else { format!("http://b.test/{i}") }
    };
    let run = drive(engine.clone(), url, u64::MAX, 2048, secs(30)).await;
    let b = engine.transport.get("b.test").seconds();
    let g = goodput(&b, 10, 29);
    // Half the inputs wait on a.test's 50/s, so b.test gets as much as the workers allow.
    let a = engine.transport.get("a.test").seconds();
    assert!(goodput(&a, 10, 29) >= 0.9 * 50.0);
    let report = run.report("b.test");
    assert_eq!(report.cuts.throttle, 0, "{report:?}");
    assert!(run.report("a.test").cuts.throttle > 0);
    let _ = g;
}

#[tokio::test(start_paused = true)]
async fn app_limited_hosts_never_grow_their_window() {
    // D2: -c 64 over 4 hosts of ample capacity: each gets about 16 in flight, never more.
    let mut models = Models::default();
    for host in ["h0.test", "h1.test", "h2.test", "h3.test"] {
        let queue = Kind::Queue { workers: 1000, service: ms(50), jitter: 0.0, queue: 0, errors: 0.0 };
        models = models.with(host, Model::new(queue));
    }
    let engine = Arc::new(Engine::new(config(64, true), models));
    let run = drive(engine.clone(), |i| format!("http://h{}.test/{i}", i % 4), u64::MAX, 256, secs(30)).await;
    for host in ["h0.test", "h1.test", "h2.test", "h3.test"] {
        let w = run.report(host).window.unwrap();
        let most = engine.transport.get(host).seconds().values().map(|s| s.max_in_flight).max().unwrap();
        assert!(w <= 2.0 * most as f64, "{host}: W {w}, and at most {most} were ever in flight");
        assert!(w < 64.0, "{host}: W {w} reached -c");
    }
}

#[tokio::test(start_paused = true)]
async fn floors_hold_against_a_server_that_refuses_everything() {
    let refuse = Kind::Queue { workers: 1, service: ms(5), jitter: 0.0, queue: 0, errors: 1.0 };
    let throttle = Kind::Bucket { rate: 0.001, burst: 1.0, retry_after: false };
    let models = Models::one("a.test", Model::new(refuse)).with("b.test", Model::new(throttle));
    let mut config = config(64, true);
    config.retry.retries = 3;
    let engine = Arc::new(Engine::new(config, models));
    let url = |i: u64| {
        if i.is_multiple_of(2) { format!("http://a.test/{i}") } else { format!("http://b.test/{i}") }
    };
    let run = drive(engine, url, u64::MAX, 256, secs(30)).await;
    let (a, b) = (run.report("a.test"), run.report("b.test"));
    assert!(a.window.unwrap() >= 1.0 && a.cuts.error > 0, "{a:?}");
    assert!(b.rate.unwrap() >= 0.2 && b.cuts.throttle > 0, "{b:?}");
}

#[tokio::test(start_paused = true)]
async fn a_quota_spent_by_its_headers_pauses_the_host_until_its_reset() {
    let quota = Kind::Window { limit: 50, window: secs(120) };
    let models = Models::one("q.test", Model::new(quota).latency(ms(5)).with_headers());
    let mut config = config(8, false);
    config.retry.max_retry_after = secs(300);
    let engine = Arc::new(Engine::new(config, models));
    let run = drive(engine.clone(), |i| format!("http://q.test/{i}"), 120, 32, secs(600)).await;
    assert!(run.records.iter().all(|r| r.ok));
    let seconds = engine.transport.get("q.test").seconds();
    let all = throttled(&seconds, 0, 1000);
    assert!(all <= 16, "at most the requests in flight when each window ran out: {all}");
    assert_eq!(run.report("q.test").cuts.pause, 2, "one pause per spent window");
}

#[tokio::test(start_paused = true)]
async fn a_declared_rate_paces_the_host_before_it_throttles() {
    let window = Kind::Window { limit: 10, window: secs(1) };
    let models = Models::one("d.test", Model::new(window).latency(ms(5)).with_headers());
    let engine = Arc::new(Engine::new(config(64, false), models));
    let run = drive(engine.clone(), |i| format!("http://d.test/{i}"), 100, 256, secs(60)).await;
    assert!(run.records.iter().all(|r| r.ok));
    let seconds = engine.transport.get("d.test").seconds();
    // The first answers declare 10/s: the opening burst is all the host ever throttles.
    assert!(throttled(&seconds, 1, 1000) <= 2, "{}", throttled(&seconds, 1, 1000));
    assert!(run.report("d.test").rate.unwrap() <= 10.0);
}

/// A buffer the log writes into, shared with the test.
#[derive(Clone)]
struct SharedBuf(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
