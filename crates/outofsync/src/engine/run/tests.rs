//! The async driver on tokio's paused clock, against a scripted transport: what the machine
//! decides (its own tests check that) carried out with real limits and timers — cooldowns that
//! hold other requests, permits given back while waiting, pacing, deadlines — to the millisecond.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{HeaderValue, RETRY_AFTER};
use http::{HeaderMap, Method, StatusCode};
use tokio::time::Instant;

use super::Engine;
use crate::engine::config::{Config, RetryPolicy};
use crate::engine::exchange::{Exchange, Exchanged, Hop, Response, Wire};
use crate::engine::failure::Failure;
use crate::record::{ErrorKind, Record};
use crate::request::RequestSpec;

/// One scripted answer.
#[derive(Clone, Debug)]
struct Reply {
    outcome: Result<u16, ErrorKind>,
    retry_after: Option<u64>,
    takes: Duration,
}

fn status(code: u16) -> Reply {
    Reply { outcome: Ok(code), retry_after: None, takes: Duration::ZERO }
}

fn error(kind: ErrorKind) -> Reply {
    Reply { outcome: Err(kind), ..status(0) }
}

impl Reply {
    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    fn takes(mut self, ms: u64) -> Self {
        self.takes = Duration::from_millis(ms);
        self
    }
}

/// A transport that answers each URL from its script (the last reply repeats) and logs when each
/// exchange began.
struct Scripted {
    start: Instant,
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    log: Mutex<Vec<(String, Duration)>>,
}

impl Scripted {
    fn new() -> Self {
        Self { start: Instant::now(), scripts: Mutex::default(), log: Mutex::default() }
    }

    fn script(self, url: &str, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.scripts.lock().unwrap().insert(url.to_owned(), replies.into_iter().collect());
        self
    }

    /// When each exchange with `url` began, from the start of the test.
    fn sent(&self, url: &str) -> Vec<Duration> {
        self.log.lock().unwrap().iter().filter(|(u, _)| u == url).map(|(_, at)| *at).collect()
    }

    /// When every exchange began, in order.
    fn all_sent(&self) -> Vec<Duration> {
        self.log.lock().unwrap().iter().map(|(_, at)| *at).collect()
    }
}

impl Exchange for Scripted {
    async fn exchange(&self, hop: &Hop, wire: &mut Wire) -> Result<Exchanged, Failure> {
        let url = hop.url.as_str();
        let reply = {
            let mut scripts = self.scripts.lock().unwrap();
            let queue = scripts.get_mut(url).unwrap_or_else(|| panic!("no script for {url}"));
            if queue.len() > 1 { queue.pop_front().unwrap() } else { queue[0].clone() }
        };
        self.log.lock().unwrap().push((url.to_owned(), self.start.elapsed()));
        wire.version = Some(http::Version::HTTP_11);
        tokio::time::sleep(reply.takes).await;
        let code = reply.outcome.map_err(|kind| Failure::new(kind, "scripted failure"))?;
        let status = StatusCode::from_u16(code).unwrap();
        let mut headers = HeaderMap::new();
        if let Some(seconds) = reply.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        Ok(Exchanged::Response(Response { status, headers, body: Vec::new() }))
    }
}

fn engine_with(config: Config, scripted: Scripted) -> Arc<Engine<Scripted>> {
    Arc::new(Engine::new(config, scripted))
}

/// A configuration whose backoff is tiny unless a test says otherwise.
fn config() -> Config {
    Config {
        retry: RetryPolicy { backoff: Duration::from_millis(1), ..RetryPolicy::default() },
        ..Config::default()
    }
}

async fn run(engine: &Engine<Scripted>, method: Method, url: &str) -> Record {
    engine.execute(0, RequestSpec::new(method, url).unwrap().into()).await.record
}

/// Starts a request now, on its own task.
fn spawn(engine: &Arc<Engine<Scripted>>, url: &str) -> tokio::task::JoinHandle<Record> {
    let (engine, spec) = (engine.clone(), RequestSpec::get(url).unwrap());
    tokio::spawn(async move { engine.execute(0, spec.into()).await.record })
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[tokio::test(start_paused = true)]
async fn a_cooldown_holds_every_request_to_the_host_and_no_other() {
    let (busy, same, other) = ("http://a.test/busy", "http://a.test/same", "https://b.test/");
    let scripted = Scripted::new()
        .script(busy, [status(429).retry_after(5), status(200)])
        .script(same, [status(200)])
        .script(other, [status(200)]);
    let engine = engine_with(config(), scripted);
    let first = spawn(&engine, busy);
    tokio::time::sleep(secs(1.0)).await;
    let (same_host, other_host) = (spawn(&engine, same), spawn(&engine, other));
    for task in [first, same_host, other_host] {
        assert!(task.await.unwrap().ok);
    }
    assert_eq!(engine.transport.sent(busy), [secs(0.0), secs(5.0)]);
    // Held until the cooldown ends, then paced: the retry goes first, the other one after it.
    let [same_sent] = engine.transport.sent(same)[..] else { panic!("sent once") };
    assert!(same_sent > secs(5.0) && same_sent <= secs(6.1), "{same_sent:?}");
    assert_eq!(engine.transport.sent(other), [secs(1.0)], "another host is not held");

    // A request that will not retry (no retries left) still cools its host down.
    let (busy, same) = ("http://c.test/busy", "http://c.test/same");
    let scripted = Scripted::new().script(busy, [status(503).retry_after(3)]).script(same, [status(200)]);
    let retry = RetryPolicy { retries: 0, ..RetryPolicy::default() };
    let engine = engine_with(Config { retry, ..Config::default() }, scripted);
    assert_eq!(run(&engine, Method::GET, busy).await.attempts, 1);
    assert!(run(&engine, Method::GET, same).await.ok);
    assert_eq!(engine.transport.sent(same), [secs(3.0)], "one first after the pause");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_an_attempt_and_the_retries() {
    let url = "http://a.test/slow";
    let mut config = Config { deadline: secs(10.0), ..config() };
    config.retry.retries = 5;
    let engine =
        engine_with(config.clone(), Scripted::new().script(url, [error(ErrorKind::Timeout).takes(6000)]));
    let record = run(&engine, Method::GET, url).await;
    assert_eq!(record.attempts, 2, "the second attempt is cut at the deadline");
    let error = record.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Timeout);
    assert!(error.message.contains("--deadline of 10s"), "{}", error.message);
    assert_eq!(record.elapsed_ms, 10_000.0);

    // A wait that would pass the deadline is not begun.
    let url = "http://a.test/later";
    let engine = engine_with(config, Scripted::new().script(url, [status(503).retry_after(20)]));
    let record = run(&engine, Method::GET, url).await;
    assert_eq!((record.attempts, record.elapsed_ms), (1, 0.0));
    let message = record.error.unwrap().message;
    assert!(message.contains("no retry: waiting 20s would pass the --deadline"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_starts_with_the_first_attempt_not_in_the_queue() {
    let (first, queued) = ("http://a.test/first", "http://a.test/queued");
    let scripted =
        Scripted::new().script(first, [status(200).takes(8000)]).script(queued, [status(200).takes(8000)]);
    let engine = engine_with(Config { concurrency: 1, deadline: secs(10.0), ..config() }, scripted);
    let (first, second) = (spawn(&engine, first), spawn(&engine, queued));
    assert!(first.await.unwrap().ok);
    let record = second.await.unwrap();
    assert!(record.ok, "8 s in the queue and 8 s of exchange are within a 10 s deadline: {:?}", record.error);
    assert_eq!(engine.transport.sent(queued), [secs(8.0)]);
    assert_eq!(record.elapsed_ms, 8000.0);
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_to_retry_holds_no_permit() {
    let (waiting, other) = ("http://a.test/x", "http://b.test/y");
    let scripted = Scripted::new()
        .script(waiting, [status(503).retry_after(10), status(200)])
        .script(other, [status(200)]);
    let engine = engine_with(Config { concurrency: 1, per_host: Some(1), ..config() }, scripted);
    let first = spawn(&engine, waiting);
    tokio::time::sleep(secs(1.0)).await;
    let second = spawn(&engine, other);
    let record = second.await.unwrap();
    assert!(record.ok);
    assert_eq!(Instant::now() - engine.transport.start, secs(1.0), "done while the first waits");
    assert!(!first.is_finished());
    assert_eq!(first.await.unwrap().attempts, 2);
    assert_eq!(engine.transport.sent(waiting), [secs(0.0), secs(10.0)]);
}

#[tokio::test(start_paused = true)]
async fn rates_pace_each_host_and_the_whole_run_evenly() {
    let hosts = ["http://a.test/", "http://b.test/"];
    let urls: Vec<String> = hosts.iter().flat_map(|h| (0..10).map(move |n| format!("{h}{n}"))).collect();
    let scripted = || urls.iter().fold(Scripted::new(), |s, url| s.script(url, [status(200)]));
    let every = |ms: u64, n: u64| (0..n).map(|k| Duration::from_millis(ms * k)).collect::<Vec<_>>();

    let engine = engine_with(Config { rate: Some("10/s".parse().unwrap()), ..config() }, scripted());
    let tasks: Vec<_> = urls.iter().map(|url| spawn(&engine, url)).collect();
    for task in tasks {
        assert!(task.await.unwrap().ok);
    }
    for host in hosts {
        let sent: Vec<_> = (0..10).flat_map(|n| engine.transport.sent(&format!("{host}{n}"))).collect();
        assert_eq!(sent, every(100, 10), "{host}: one request every 100 ms, each host on its own");
    }

    let engine = engine_with(Config { global_rate: Some("20/s".parse().unwrap()), ..config() }, scripted());
    let tasks: Vec<_> = urls.iter().map(|url| spawn(&engine, url)).collect();
    for task in tasks {
        assert!(task.await.unwrap().ok);
    }
    assert_eq!(engine.transport.all_sent(), every(50, 20), "one request every 50 ms over all hosts");
}

#[tokio::test(start_paused = true)]
async fn requests_that_queued_for_a_permit_do_not_go_out_in_a_burst() {
    // Four slow requests fill the permits and all end at 2 s; six more wait behind them. Pace
    // cells spent before the wait for a permit would let those six out at 2 s all at once.
    let urls: Vec<String> = (0..10).map(|n| format!("http://a.test/{n}")).collect();
    let scripted = urls.iter().enumerate().fold(Scripted::new(), |s, (n, url)| {
        let takes = if n < 4 { 2000 - 100 * n as u64 } else { 0 };
        s.script(url, [status(200).takes(takes)])
    });
    let engine =
        engine_with(Config { concurrency: 4, rate: Some("10/s".parse().unwrap()), ..config() }, scripted);
    let mut tasks = Vec::new();
    for url in &urls {
        tasks.push(spawn(&engine, url));
        // Let each task queue before the next one starts, so the order is the input order.
        tokio::task::yield_now().await;
    }
    for task in tasks {
        assert!(task.await.unwrap().ok);
    }
    let sent = engine.transport.all_sent();
    let expected: Vec<Duration> =
        [0.0, 0.1, 0.2, 0.3, 2.0, 2.1, 2.2, 2.3, 2.4, 2.5].into_iter().map(secs).collect();
    assert_eq!(sent.len(), expected.len());
    for (got, want) in sent.iter().zip(&expected) {
        assert!(got.abs_diff(*want) < Duration::from_millis(1), "sent at {sent:?}, expected {expected:?}");
    }
}

#[tokio::test]
async fn a_request_without_pages_is_a_small_task() {
    // Each request in flight holds this future in its task (a worker, in completion order):
    // with the page walk inline it was 23 KiB (3 KiB since the walk is boxed; 4 KiB with the
    // own pool's send inline). A generous bound, so that only a regression trips it.
    let fetcher = crate::Fetcher::builder().build().unwrap();
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let input = crate::request::Input::from(RequestSpec::get("http://a.test/").unwrap());
    let task = fetcher.engine.run(0, input, &tx);
    assert!(std::mem::size_of_val(&task) < 8 * 1024, "{} bytes", std::mem::size_of_val(&task));
}
