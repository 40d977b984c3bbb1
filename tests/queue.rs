//! Jobs through a real redis-server: submit, workers, collector. Whatever is killed or
//! restarted mid-job — a worker, the collector, Redis itself — the output ends with exactly one
//! record per input; a request that kills every worker that takes it ends as one failure record;
//! and `--rate` holds for the whole fleet, second by second, as the server itself counts.
//!
//! Leases are short (a second or less) so that takeovers happen within the test's time.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::redis::Redis;
use crate::support::{Server, get_json, indexes, outofsync, server, whole_records};

/// These tests each run a redis-server, a server and several workers: one at a time, so that
/// two of them do not share the two cores (and a rate measured per second stays a measure of
/// the limit, not of the load).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Job {
    redis: Redis,
    server: Server,
    dir: tempfile::TempDir,
    name: &'static str,
}

impl Job {
    /// A redis-server, the built-in server, and `n` inputs from `line` in a temporary directory.
    fn new(name: &'static str, appendonly: bool) -> Option<Job> {
        let redis = Redis::start(appendonly)?;
        Some(Job { redis, server: server(), dir: tempfile::tempdir().unwrap(), name })
    }

    fn input(&self, n: u64, mut line: impl FnMut(&Server, u64) -> String) -> String {
        let path = self.dir.path().join("in.txt");
        std::fs::write(&path, (0..n).map(|i| line(&self.server, i) + "\n").collect::<String>()).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn submit(&self, args: &[&str]) {
        let url = self.redis.url();
        let mut all = vec!["submit", "-q", "--redis", &url, "--job", self.name];
        all.extend(args);
        outofsync().args(&all).assert().success();
    }

    /// A process of the binary with `args`, stderr into a file of the test directory.
    fn spawn(&self, name: &str, args: &[&str]) -> Child {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        Command::new(assert_cmd::cargo::cargo_bin("outofsync"))
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the binary starts")
    }

    fn worker(&self, name: &str, extra: &[&str]) -> Child {
        let url = self.redis.url();
        let mut args = vec!["worker", "--redis", &url, "--job", self.name, "--name", name];
        args.extend(extra);
        self.spawn(name, &args)
    }

    fn output(&self) -> PathBuf {
        self.dir.path().join("out.jsonl")
    }

    fn collector(&self) -> Child {
        let url = self.redis.url();
        let out = self.output();
        self.spawn("collect", &["collect", "--redis", &url, "--job", self.name, "-o", out.to_str().unwrap()])
    }

    fn status(&self) -> Value {
        let url = self.redis.url();
        let done =
            outofsync().args(["status", "--redis", &url, "--job", self.name, "--json"]).output().unwrap();
        assert!(done.status.success(), "status: {}", String::from_utf8_lossy(&done.stderr));
        serde_json::from_slice(&done.stdout).unwrap()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Waits until `ready` holds of the job's status, for up to a minute.
    fn wait_for(&self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let status = self.status();
            if ready(&status) {
                return status;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "waited a minute for {what}: {status}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a process to end (a minute at most): its exit code.
    fn finish(&self, name: &str, mut child: Child) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if start.elapsed() > Duration::from_secs(90) {
                _ = child.kill();
                panic!("{name} did not end within 90 s; its log:\n{}", self.log(name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn number(status: &Value, field: &str) -> u64 {
    status[field].as_u64().unwrap_or(0)
}

fn pending_of(status: &Value, worker: &str) -> u64 {
    let workers = status["workers"].as_array().cloned().unwrap_or_default();
    workers.iter().find(|w| w["name"] == worker).map_or(0, |w| w["pending"].as_u64().unwrap_or(0))
}

/// The output holds exactly one whole record for each of `0..n`, and nothing else.
fn assert_exactly_once(out: &Path, n: u64) -> Vec<Value> {
    let (records, torn) = whole_records(out);
    assert!(torn.is_empty(), "a torn tail is left: {:?}", String::from_utf8_lossy(&torn));
    let seen = indexes(&records);
    assert_eq!(seen.len() as u64, n, "one record per input");
    assert_eq!(seen.into_iter().collect::<HashSet<u64>>(), (0..n).collect(), "every index once");
    records
}

#[test]
fn a_worker_killed_mid_job_loses_nothing_its_requests_are_taken_over_and_each_input_has_one_record() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(job) = Job::new("kill-a-worker", false) else { return };
    let input = job.input(5000, |s, i| s.url(&format!("/delay/{}?n={i}", i % 5)));
    job.submit(&["--lease", "1s", "-c", "32", &input]);
    let collector = job.collector();
    let metrics = format!("127.0.0.1:{}", crate::support::ports::lease());
    let workers =
        vec![job.worker("w0", &[]), job.worker("w1", &["--metrics", &metrics]), job.worker("w2", &[])];
    let mut workers = workers.into_iter();
    let doomed = workers.next().unwrap();
    job.wait_for("w0 to hold requests with 500 records done", |s| {
        number(s, "finished") >= 500 && pending_of(s, "w0") > 0
    });
    kill(doomed);
    // A live worker's metrics, in Prometheus text.
    let (code, _, text) = crate::support::get(&format!("http://{metrics}/metrics"));
    let text = String::from_utf8(text).unwrap();
    assert_eq!(code, 200);
    for family in ["outofsync_records_total{ok=\"true\"}", "outofsync_in_flight", "outofsync_reclaims_total"]
    {
        assert!(text.contains(family), "{family} in {text}");
    }
    assert_eq!(job.finish("collect", collector), 0, "{}", job.log("collect"));
    for (name, worker) in ["w1", "w2"].into_iter().zip(workers) {
        assert_eq!(job.finish(name, worker), 0, "{}", job.log(name));
    }
    let records = assert_exactly_once(&job.output(), 5000);
    assert!(records.iter().all(|r| r["ok"] == true));
    let status = job.status();
    assert!(number(&status, "reclaims") > 0, "the survivors took w0's requests over: {status}");
    assert_eq!(status["status"], "done");
    // The server saw each input at least once, and each record counts its own sends.
    let (_, stats) = get_json(&job.server.url("/stats"));
    let sent = stats["requests"].as_u64().unwrap();
    let counted: u64 = records.iter().map(|r| r["attempts"].as_u64().unwrap()).sum();
    assert!(sent >= counted && counted >= 5000, "sent {sent}, counted {counted}");
}

#[test]
fn the_collector_killed_and_restarted_mid_job_still_writes_one_record_per_input() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(job) = Job::new("kill-the-collector", false) else { return };
    let input = job.input(3000, |s, i| s.url(&format!("/delay/{}?n={i}", i % 3)));
    job.submit(&["--lease", "1s", &input]);
    let workers: Vec<Child> = ["w0", "w1"].iter().map(|name| job.worker(name, &[])).collect();
    let first = job.collector();
    let start = Instant::now();
    while whole_records(&job.output()).0.len() < 500 {
        assert!(start.elapsed() < Duration::from_secs(60), "{}", job.log("collect"));
        std::thread::sleep(Duration::from_millis(10));
    }
    kill(first);
    let again = job.collector();
    assert_eq!(job.finish("collect", again), 0, "{}", job.log("collect"));
    for (name, worker) in ["w0", "w1"].into_iter().zip(workers) {
        assert_eq!(job.finish(name, worker), 0, "{}", job.log(name));
    }
    assert_exactly_once(&job.output(), 3000);
}

#[test]
fn redis_restarted_mid_job_is_waited_for_and_the_job_completes_with_one_record_per_input() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut job) = Job::new("restart-redis", true) else { return };
    let input = job.input(3000, |s, i| s.url(&format!("/delay/{}?n={i}", i % 4)));
    job.submit(&["--lease", "2s", &input]);
    let workers: Vec<Child> = ["w0", "w1"].iter().map(|name| job.worker(name, &[])).collect();
    let collector = job.collector();
    job.wait_for("500 records", |s| number(s, "finished") >= 500);
    job.redis.restart();
    assert_eq!(job.finish("collect", collector), 0, "{}", job.log("collect"));
    for (name, worker) in ["w0", "w1"].into_iter().zip(workers) {
        assert_eq!(job.finish(name, worker), 0, "{}", job.log(name));
    }
    assert_exactly_once(&job.output(), 3000);
    let logs = job.log("w0") + &job.log("w1") + &job.log("collect");
    assert!(logs.contains("the queue is back"), "someone saw Redis go away and come back:\n{logs}");
}

#[test]
fn a_request_that_kills_every_worker_ends_as_one_failure_record_after_the_delivery_limit() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(job) = Job::new("poison", false) else { return };
    // Input 5 hangs (ten minutes): each worker that takes it is killed while it waits.
    let input = job.input(10, |s, i| if i == 5 { s.url("/delay/600000") } else { s.url("/json") });
    job.submit(&["--lease", "500ms", "--max-deliveries", "2", &input]);
    let collector = job.collector();
    for (n, name) in ["w0", "w1"].into_iter().enumerate() {
        let worker = job.worker(name, &[]);
        job.wait_for("the hanging request to be held", |s| {
            number(s, "finished") == 9
                && pending_of(s, name) == 1
                && number(s, "max_deliveries_pending") == n as u64 + 1
        });
        kill(worker);
    }
    let last = job.worker("w2", &[]);
    assert_eq!(job.finish("collect", collector), 1, "one record failed: {}", job.log("collect"));
    assert_eq!(job.finish("w2", last), 0, "{}", job.log("w2"));
    let records = assert_exactly_once(&job.output(), 10);
    let poison = records.iter().find(|r| r["i"] == 5).unwrap();
    assert_eq!(poison["ok"], false);
    assert_eq!(poison["error"]["kind"], "io");
    let message = poison["error"]["message"].as_str().unwrap();
    assert!(message.contains("delivered to workers 2 times"), "{message}");
    assert_eq!(number(&job.status(), "poisoned"), 1);
}

#[test]
fn a_rate_holds_for_the_whole_fleet_in_every_second_and_per_host_for_all_workers_together() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(job) = Job::new("fleet-rate", false) else { return };
    let input = job.input(200, |s, i| s.url(&format!("/delay/10?n={i}")));
    job.submit(&["--lease", "2s", "--rate", "50/s", "--per-host", "3", &input]);
    http_post(&job.server.url("/stats/reset"));
    let collector = job.collector();
    let workers: Vec<Child> = ["w0", "w1", "w2"].iter().map(|name| job.worker(name, &[])).collect();
    assert_eq!(job.finish("collect", collector), 0, "{}", job.log("collect"));
    for (name, worker) in ["w0", "w1", "w2"].into_iter().zip(workers) {
        assert_eq!(job.finish(name, worker), 0, "{}", job.log(name));
    }
    assert_exactly_once(&job.output(), 200);
    let (_, stats) = get_json(&job.server.url("/stats"));
    let per_second: Vec<u64> =
        stats["per_second"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
    assert!(per_second.iter().all(|&n| n as f64 <= 50.0 * 1.05), "per second: {per_second:?}");
    // Unpaced, 200 such requests take a fraction of a second; at 50/s the fleet needs four.
    assert!(per_second.len() >= 4, "the fleet was paced: {per_second:?}");
    assert!(stats["max_in_flight"].as_u64().unwrap() <= 3, "--per-host 3 for the fleet: {stats}");
    let status = job.status();
    assert_eq!(status["workers"].as_array().unwrap().len(), 3, "three workers shared the job: {status}");
}

fn http_post(url: &str) {
    crate::support::http().post(url).send_empty().unwrap();
}

#[test]
fn a_shard_submitted_as_a_job_keeps_the_whole_inputs_indexes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(job) = Job::new("shard-1-of-2", false) else { return };
    let input = job.input(20, |s, i| s.url(&format!("/json?id={i}")));
    job.submit(&["--shard", "1/2", &input]);
    let worker = job.worker("w0", &[]);
    assert_eq!(job.finish("collect", job.collector()), 0, "{}", job.log("collect"));
    assert_eq!(job.finish("w0", worker), 0, "{}", job.log("w0"));
    let (records, _) = whole_records(&job.output());
    let mut seen = indexes(&records);
    seen.sort_unstable();
    assert_eq!(seen, (0..20).filter(|i| i % 2 == 1).collect::<Vec<u64>>());
    assert!(records.iter().all(|r| r["json"]["id"] == r["i"]), "each record is its own input's");
}
