//! `outofsync fetch`: one record per input, whatever happens, under every limit it is given.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::tls::TlsServer;
use crate::support::{by_i, get_json, outofsync, records, records_in, server, spawn_first_line};

#[test]
fn ten_thousand_inputs_make_ten_thousand_records_with_every_index_once() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let mut text = String::new();
    for n in 0..10_000 {
        text.push_str(&match n % 10 {
            0 => format!("{}\n", s.url("/status/404")),
            1 => format!("{}\n", s.url(&format!("/delay/{}", n % 7))),
            _ => format!("{}\n", s.url(&format!("/json?id={n}"))),
        });
    }
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("out.jsonl");
    let run = outofsync()
        .args(["fetch", "-c", "256", "-q", "--retries", "0", "-o"])
        .arg(&out)
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "some 404s: exit 1");
    let records = records_in(&out);
    assert_eq!(records.len(), 10_000);
    let seen: HashSet<u64> = records.iter().map(|r| r["i"].as_u64().unwrap()).collect();
    assert_eq!(seen, (0..10_000).collect());
    for r in &records {
        let i = r["i"].as_u64().unwrap();
        assert_eq!(r["line"], i + 1);
        assert_eq!(r["ok"], i % 10 != 0, "{r}");
    }
    assert_eq!(by_i(&records, 7)["json"]["id"], 7);
}

#[test]
fn malformed_lines_become_records_naming_the_line_and_nothing_is_sent() {
    let s = server();
    let input = format!(
        "# a comment\n\n{json}\n/relative\nnot a url\n{{\"url\": 3}}\n{{broken\nftp://x.test/\n{tab}\n{{\"url\":\"{json}\",\"method\":\"G ET\"}}\n{{\"url\":\"{json}\",\"headers\":{{\"X\":\"a\\r\\nEvil: 1\"}}}}\n{json}\n",
        json = s.url("/json"),
        tab = s.url("/json\tx"),
    );
    let run = outofsync().args(["fetch", "-q", "-"]).write_stdin(input).output().unwrap();
    assert_eq!(run.status.code(), Some(1));
    let records = records(&run.stdout);
    assert_eq!(records.len(), 10, "blank and comment lines are not requests");
    let expect = [
        (0, 3, None),
        (1, 4, Some("relative URL without a base")),
        (2, 5, Some("space")),
        (3, 6, Some("\"url\" must be a string")),
        (4, 7, Some("bad JSON request object")),
        (5, 8, Some("unsupported scheme")),
        (6, 9, Some("tab")),
        (7, 10, Some("bad method")),
        (8, 11, Some("carriage return")),
        (9, 12, None),
    ];
    for (i, line, problem) in expect {
        let r = by_i(&records, i);
        assert_eq!(r["line"], line, "{r}");
        match problem {
            None => assert_eq!(r["ok"], true, "{r}"),
            Some(p) => {
                assert_eq!(r["error"]["kind"], "invalid_request", "{r}");
                assert_eq!(r["attempts"], 0);
                let message = r["error"]["message"].as_str().unwrap();
                assert!(message.starts_with(&format!("line {line}: ")), "{message}");
                assert!(message.contains(p), "{message} should say {p}");
            }
        }
    }
    assert_eq!(get_json(&s.url("/stats")).1["requests"], 2, "only the two valid lines were sent");
}

#[test]
fn a_byte_order_mark_before_the_first_line_is_not_part_of_it() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("urls.txt", format!("\u{feff}{}\n{}\n", s.url("/json?id=1"), s.url("/json?id=2"))),
        ("objects.jsonl", format!("\u{feff}{{\"url\":\"{}\"}}\n", s.url("/json?id=3"))),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let run = outofsync().args(["fetch", "-q"]).arg(&path).output().unwrap();
        let records = records(&run.stdout);
        assert!(!records.is_empty());
        assert!(records.iter().all(|r| r["ok"] == true), "{name}: {records:?}");
        assert_eq!(by_i(&records, 0)["line"], 1);
    }
}

#[test]
fn concurrency_and_per_host_limits_are_never_exceeded() {
    let s = server();
    let port = s.addr().port();
    let mut input = String::new();
    for n in 0..120 {
        let host = if n % 2 == 0 { "a.test" } else { "b.test" };
        input.push_str(&format!("http://{host}:{port}/delay/30\n"));
    }
    let resolve = |h: &str| format!("{h}:{port}:127.0.0.1");
    let run = outofsync()
        .args(["fetch", "-q", "-c", "10", "--per-host", "3", "--resolve", &resolve("a.test"), "--resolve"])
        .arg(resolve("b.test"))
        .write_stdin(input.clone())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(records(&run.stdout).len(), 120);
    let (_, stats) = get_json(&s.url("/stats"));
    for host in ["a.test", "b.test"] {
        let max = stats["by_host"][format!("{host}:{port}")]["max_in_flight"].as_u64().unwrap();
        assert!((1..=3).contains(&max), "{host}: {max} in flight at most, limit 3");
    }
    assert!(stats["max_in_flight"].as_u64().unwrap() <= 6);

    // Without a per-host limit, the global one holds.
    _ = crate::support::http().post(s.url("/stats/reset")).send_empty().unwrap();
    let run = outofsync()
        .args(["fetch", "-q", "-c", "5", "--resolve", &resolve("a.test"), "--resolve", &resolve("b.test")])
        .write_stdin(input)
        .output()
        .unwrap();
    assert!(run.status.success());
    let max = get_json(&s.url("/stats")).1["max_in_flight"].as_u64().unwrap();
    assert!((2..=5).contains(&max), "{max} in flight at most, limit 5");
}

fn elapsed_of(record: &Value) -> f64 {
    record["elapsed_ms"].as_f64().unwrap()
}

#[test]
fn timeouts_end_as_timeout_records_close_to_the_configured_value() {
    let s = server();
    let slow = s.url("/delay/10000");
    let run = outofsync().args(["fetch", "-q", "--retries", "0", "--timeout", "1s", &slow]).output().unwrap();
    let r = &records(&run.stdout)[0];
    assert_eq!(r["error"]["kind"], "timeout", "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("--timeout"));
    assert!((1000.0..1500.0).contains(&elapsed_of(r)), "{r}");

    let run = outofsync()
        .args(["fetch", "-q", "--retries", "0", "--read-timeout", "700ms", &slow])
        .output()
        .unwrap();
    let r = &records(&run.stdout)[0];
    assert_eq!(r["error"]["kind"], "timeout", "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("--read-timeout"));
    assert!((700.0..1200.0).contains(&elapsed_of(r)), "{r}");

    let run = outofsync()
        .args(["fetch", "-q", "--deadline", "1500ms", "--timeout", "1s", "--backoff", "1ms", &slow])
        .output()
        .unwrap();
    let r = &records(&run.stdout)[0];
    assert_eq!(r["error"]["kind"], "timeout", "{r}");
    assert!((1500.0..2000.0).contains(&elapsed_of(r)), "the deadline bounds retries too: {r}");
}

#[test]
fn tls_is_verified_and_cacert_and_insecure_do_what_they_say() {
    let tls = TlsServer::start(&["localhost"]);
    let fetch = |extra: &[&str]| {
        let mut cmd = outofsync();
        cmd.args(["fetch", "-q", "--retries", "0", "--resolve", &tls.resolve(), &tls.url()]).args(extra);
        cmd.output().unwrap()
    };
    let run = fetch(&[]);
    assert_eq!(run.status.code(), Some(1));
    let r = &records(&run.stdout)[0];
    assert_eq!(r["error"]["kind"], "tls", "a self-signed certificate is not trusted: {r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("certificate"), "{r}");

    let cert = tls.cert_file.to_str().unwrap();
    let run = fetch(&["--cacert", cert]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stdout));
    assert_eq!(records(&run.stdout)[0]["json"]["tls"], true);

    let run = fetch(&["--insecure"]);
    assert!(run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("NOT verified"), "--insecure is loud");

    // A certificate for another name fails even when its issuer is trusted.
    let other = TlsServer::start(&["other.test"]);
    let run = outofsync()
        .args(["fetch", "-q", "--retries", "0", "--resolve", &other.resolve(), &other.url()])
        .args(["--cacert", other.cert_file.to_str().unwrap()])
        .output()
        .unwrap();
    let r = &records(&run.stdout)[0];
    assert_eq!(r["error"]["kind"], "tls", "{r}");

    // A --cacert that holds no certificate is a usage error.
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let run = fetch(&["--cacert", bogus.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("CA file"));
}

#[test]
fn exit_codes_are_0_1_and_2_as_documented() {
    let s = server();
    outofsync().args(["fetch", "-q", &s.url("/json")]).assert().code(0);
    outofsync().args(["fetch", "-q", &s.url("/status/500"), "--retries", "0"]).assert().code(1);
    outofsync().args(["fetch", "--no-such-flag"]).assert().code(2);
    outofsync().args(["fetch", "-c", "0", &s.url("/json")]).assert().code(2);
    let missing = outofsync().args(["fetch", "/definitely/not/a/file.txt"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open /definitely/not/a/file.txt"));
    let unwritable =
        outofsync().args(["fetch", "-o", "/definitely/not/a/dir/out.jsonl", &s.url("/json")]).output();
    assert_eq!(unwritable.unwrap().status.code(), Some(2));
    let help = outofsync().args(["fetch", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Exit codes:") && help.contains("[default: 64]") && help.contains("[default: 120s]")
    );
}

#[test]
fn an_existing_output_is_not_appended_to_unless_told() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    outofsync().args(["fetch", "-q", "-o", out.to_str().unwrap(), &s.url("/json")]).assert().code(0);
    let again =
        outofsync().args(["fetch", "-q", "-o", out.to_str().unwrap(), &s.url("/json")]).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));
    assert_eq!(records_in(&out).len(), 1, "untouched");
    outofsync()
        .args(["fetch", "-q", "--overwrite", "-o", out.to_str().unwrap(), &s.url("/json?id=[1-3]")])
        .assert()
        .code(0);
    assert_eq!(records_in(&out).len(), 3);
}

#[test]
fn an_output_that_holds_something_else_than_records_is_refused_for_what_it_holds() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let urls = dir.path().join("urls.txt");
    let text = format!("{}\n", s.url("/json"));
    std::fs::write(&urls, &text).unwrap();
    // -o urls.txt where the input was meant.
    let run =
        outofsync().args(["fetch", "-q", "-o"]).arg(&urls).arg(s.url("/json?id=[1-3]")).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("does not hold records of outofsync: its first line is \"http://"), "{err}");
    assert!(!err.contains("already holds records"), "{err}");
    assert_eq!(std::fs::read_to_string(&urls).unwrap(), text, "untouched");

    std::fs::write(&urls, b"\x89PNG\r\n\x1a\n\0\0").unwrap();
    let run = outofsync().args(["fetch", "-q", "-o"]).arg(&urls).arg(s.url("/json")).output().unwrap();
    assert!(String::from_utf8_lossy(&run.stderr).contains("it starts with binary data"));
}

#[test]
fn a_closed_stdout_pipe_is_not_an_error() {
    let s = server();
    let (mut child, first) = spawn_first_line(&["fetch", "-q", "-c", "4", &s.url("/json?id=[1-100000]")]);
    assert!(first.starts_with("{\"i\":"));
    // The reader is gone now (like `| head -1`).
    let start = Instant::now();
    let status = child.wait().unwrap();
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.is_empty(), "no complaint: {err}");
}

#[test]
fn json_request_objects_carry_method_headers_body_id_and_meta() {
    let s = server();
    let input = format!(
        concat!(
            r#"{{"url":"{u}","method":"PUT","headers":{{"X-Team":"blue"}},"json":{{"n":1}},"id":{{"k":7}},"row":3}}"#,
            "\n",
            r#"{{"url":"{u}","body":"plain text","headers":["X-A: 1","X-B: 2"],"id":"two"}}"#,
            "\n",
            "{u}\n"
        ),
        u = s.url("/anything")
    );
    let run = outofsync()
        .args(["fetch", "-q", "-H", "X-Global: g", "-A", "tester/1", "-"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert!(run.status.success());
    let records = records(&run.stdout);
    let put = by_i(&records, 0);
    assert_eq!(put["method"], "PUT");
    assert_eq!(put["id"], serde_json::json!({"k": 7}));
    assert_eq!(put["meta"], serde_json::json!({"row": 3}));
    let echo = &put["json"];
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["headers"]["x-team"], "blue");
    assert_eq!(echo["headers"]["x-global"], "g");
    assert_eq!(echo["headers"]["user-agent"], "tester/1");
    assert_eq!(echo["headers"]["content-type"], "application/json");
    assert_eq!(echo["json"], serde_json::json!({"n": 1}));
    let post = by_i(&records, 1);
    assert_eq!(post["method"], "POST", "a body without a method is a POST");
    assert_eq!(post["json"]["text"], "plain text");
    assert_eq!(post["json"]["headers"]["x-b"], "2");
    assert!(post.get("meta").is_none());
    // A request with no headers of its own gets every default and global one, and `Host`.
    let plain = &by_i(&records, 2)["json"]["headers"];
    assert_eq!(plain["x-global"], "g");
    assert_eq!(plain["user-agent"], "tester/1");
    assert_eq!(plain["accept"], "application/json, */*;q=0.5");
    assert_eq!(plain["host"].as_str(), s.url("").strip_prefix("http://"));
}

#[test]
fn globs_urls_and_stdin_are_all_inputs() {
    let s = server();
    let run = outofsync()
        .args(["fetch", "-q", &s.url("/json?id=[1-3]"), "-", &s.url("/{gzip,zstd}")])
        .write_stdin(format!("{}\n", s.url("/json?id=[07-09]")))
        .output()
        .unwrap();
    assert!(run.status.success());
    let records = records(&run.stdout);
    let ids: Vec<Value> = (0..6).map(|i| by_i(&records, i)["json"]["id"].clone()).collect();
    assert_eq!(ids, [1, 2, 3, 7, 8, 9].map(Value::from));
    assert_eq!(by_i(&records, 6)["json"]["encoding"], "gzip");
    assert_eq!(by_i(&records, 7)["json"]["encoding"], "zstd");
    assert!(by_i(&records, 0).get("line").is_none(), "a URL argument has no line");
    assert_eq!(by_i(&records, 4)["line"], 1);
}

#[test]
fn http2_prior_knowledge_and_http1_only_are_spoken() {
    let s = server();
    for (flag, version) in [("--http2-prior-knowledge", "HTTP/2.0"), ("--http1-only", "HTTP/1.1")] {
        let run = outofsync().args(["fetch", "-q", flag, &s.url("/anything")]).output().unwrap();
        assert!(run.status.success());
        assert_eq!(records(&run.stdout)[0]["json"]["version"], version);
    }
}

#[test]
fn body_modes_keep_what_they_say() {
    let s = server();
    let fetch = |mode: &str, path: &str| {
        let run = outofsync().args(["fetch", "-q", "--body", mode, &s.url(path)]).output().unwrap();
        records(&run.stdout).remove(0)
    };
    assert!(fetch("none", "/json").get("json").is_none());
    assert_eq!(fetch("none", "/json")["bytes"], 345);
    assert!(fetch("text", "/json")["text"].as_str().unwrap().starts_with("{\"id\":1"));
    let binary = fetch("json", "/bytes/64");
    assert_eq!(binary["error"]["kind"], "decode", "{binary}");
    assert!(fetch("auto", "/bytes/64")["body_b64"].is_string());
}

#[test]
fn summary_goes_to_stderr_and_to_a_json_file() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let run = outofsync()
        .args(["fetch", "--retries", "0", "--summary-json", summary.to_str().unwrap()])
        .args([s.url("/json?id=[1-8]"), s.url("/status/{404,503}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("10 requests") && stderr.contains("8 ok, 2 failed"), "{stderr}");
    assert!(stderr.contains("p99"), "{stderr}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(doc["total"], 10);
    assert_eq!(doc["failures"]["http_status"], 2);
    assert_eq!(doc["statuses"]["404"], 1);
    assert!(doc["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert!(doc["requests_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn records_match_the_json_schema() {
    let s = server();
    let schema: Value = serde_json::from_str(include_str!("../schema/record.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let input = [
        s.url("/json"),
        s.url("/status/404"),
        s.url("/flaky/1?key=schema"),
        s.url("/redirect/2"),
        s.url("/bytes/16"),
        s.url("/drip?bytes=3&interval_ms=1"),
        r#"{"url":"/nope","id":1}"#.to_owned(),
        format!(r#"{{"url":"{}","id":[1,2],"extra":{{"a":null}}}}"#, s.url("/anything")),
        "http://127.0.0.1:1/".to_owned(),
    ]
    .join("\n");
    let run = outofsync().args(["fetch", "-q", "--backoff", "1ms", "-"]).write_stdin(input).output().unwrap();
    let records = records(&run.stdout);
    assert_eq!(records.len(), 9);
    for record in &records {
        let errors: Vec<String> = validator.iter_errors(record).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{record}\n{errors:#?}");
    }
    // And the schema is not a rubber stamp.
    assert!(!validator.is_valid(&serde_json::json!({"i": 0, "ok": false, "attempts": 1, "elapsed_ms": 1})));
    assert!(!validator.is_valid(
        &serde_json::json!({"i": 0, "ok": true, "attempts": 1, "elapsed_ms": 1, "status": 200, "surprise": 1})
    ));
}

#[test]
fn demo_keeps_its_promise() {
    let dir = tempfile::tempdir().unwrap();
    let run = outofsync().args(["demo", "--no-progress", "--dir"]).arg(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("exactly one record per request"), "{stderr}");
    assert!(stderr.contains("outofsync lab --quick"), "the demo ends by pointing at the lab: {stderr}");
    assert!(stderr.contains("cargo install --path ."), "and says where the command comes from: {stderr}");
    let records = records_in(&dir.path().join("records.jsonl"));
    assert_eq!(records.len(), 10_000);
    let ok = records.iter().filter(|r| r["ok"] == true).count();
    assert!(ok > 9_000, "most of the mix succeeds: {ok}");
    let _ = std::io::stdout().flush();
}

#[test]
fn a_slow_stdin_is_fetched_line_by_line_not_held_back_for_a_batch() {
    let s = server();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("outofsync"))
        .args(["fetch", "-q", "-"])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for id in 1..=3 {
        writeln!(stdin, "{}", s.url(&format!("/json?id={id}"))).unwrap();
        stdin.flush().unwrap();
        // The record comes while stdin is still open: the reader does not wait to fill a batch.
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let record: Value = serde_json::from_str(&line).unwrap();
        assert_eq!((record["i"].as_u64(), record["json"]["id"].as_u64()), (Some(id - 1), Some(id)));
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_concurrency_over_the_open_file_limit_is_lowered_to_fit_and_nothing_fails() {
    let s = server();
    let binary = assert_cmd::cargo::cargo_bin("outofsync");
    let url = s.url("/json?id=[1-300]");
    let under = |limit: u32, concurrency: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
            .arg(&binary)
            .args(["fetch", &url, "-c", concurrency, "--retries", "0"])
            .env_clear()
            .output()
            .unwrap()
    };
    let over = under(64, "200");
    let stderr = String::from_utf8_lossy(&over.stderr);
    assert!(stderr.contains("WARNING: -c 200") && stderr.contains("running with -c 32"), "{stderr}");
    assert!(over.status.success(), "no request failed for want of a descriptor: {stderr}");
    let mut seen: Vec<u64> = records(&over.stdout).iter().map(|r| r["i"].as_u64().unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..300).collect::<Vec<_>>(), "one record per input, whatever the limit");

    let within = under(1024, "16");
    assert!(within.status.success());
    assert!(!String::from_utf8_lossy(&within.stderr).contains("WARNING"));
}

/// Names of the threads of a running process.
fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

#[test]
fn threads_sets_the_event_loop_threads_and_one_is_the_default() {
    let s = server();
    for (args, workers) in [(&[][..], 1), (&["--threads", "3"][..], 3)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_outofsync"))
            .args(["fetch", "-q", "-c", "4", "-o", "/dev/null"])
            .args(args)
            .arg(s.url("/delay/3000?n=[1-4]"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let mut seen = 0;
        // The runtime starts its workers before the first request; the requests then take 3 s.
        while started.elapsed() < Duration::from_secs(2) {
            seen = thread_names(child.id()).iter().filter(|n| n.as_str() == "outofsync-loop").count();
            if seen >= workers {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        let after = thread_names(child.id()).iter().filter(|n| n.as_str() == "outofsync-loop").count();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!((seen, after), (workers, workers), "{args:?}");
    }
    let refused = outofsync().args(["fetch", "--threads", "0", "http://127.0.0.1:9/"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--threads"));
}

#[test]
fn silent_as_in_curl_prints_neither_progress_nor_summary() {
    let s = server();
    for flag in ["-s", "--silent", "-q"] {
        let run = outofsync().args(["fetch", flag, &s.url("/json")]).output().unwrap();
        assert_eq!(run.status.code(), Some(0), "{flag}: {}", String::from_utf8_lossy(&run.stderr));
        assert!(run.stderr.is_empty(), "{flag}: {}", String::from_utf8_lossy(&run.stderr));
        assert_eq!(records(&run.stdout).len(), 1, "{flag}");
    }
    let help = outofsync().args(["fetch", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("-s/--silent"));
}

#[test]
fn a_dash_means_stdout_for_the_records_and_for_the_summary() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    for output in ["-", "/dev/stdout"] {
        let mut fetch = outofsync();
        fetch.current_dir(dir.path()).args(["fetch", "-q", "-o", output, &s.url("/json")]);
        let run = fetch.output().unwrap();
        assert_eq!(run.status.code(), Some(0), "{output}: {}", String::from_utf8_lossy(&run.stderr));
        assert_eq!(records(&run.stdout).len(), 1, "{output}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file named - (or a manifest)");

    let out = dir.path().join("out.jsonl");
    let mut fetch = outofsync();
    fetch.args(["fetch", "-q", "--summary-json", "-", "-o"]).arg(&out).arg(s.url("/json"));
    let run = fetch.output().unwrap();
    assert_eq!(run.status.code(), Some(0));
    let summary: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["total"], 1, "{summary}");
    assert_eq!(records_in(&out).len(), 1);

    let mixed = outofsync().args(["fetch", "--summary-json", "-", &s.url("/json")]).output().unwrap();
    assert_eq!(mixed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("would mix the summary into the records"));
}

#[test]
fn a_summary_json_path_that_cannot_be_written_is_refused_before_any_request() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/summary.json");
    let cases = [(missing.as_path(), "does not exist"), (dir.path(), "is a directory")];
    for (path, why) in cases {
        let mut fetch = outofsync();
        fetch.args(["fetch", "-q", "--summary-json"]).arg(path).arg(s.url("/json?id=[1-5]"));
        let run = fetch.output().unwrap();
        assert_eq!(run.status.code(), Some(2), "{}", path.display());
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(err.contains("--summary-json") && err.contains(why), "{err}");
    }
    assert_eq!(get_json(&s.url("/stats")).1["by_path"]["/json"], Value::Null, "nothing was fetched");
}

/// A pseudo-terminal: the controller's end, and the path of the terminal end.
fn pty() -> (std::fs::File, std::path::PathBuf) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain calls on a descriptor this function owns; ptsname_r writes within `name`.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(fd >= 0 && libc::grantpt(fd) == 0 && libc::unlockpt(fd) == 0, "a pseudo-terminal");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr()).to_str().unwrap().to_owned();
        (std::fs::File::from_raw_fd(fd), path.into())
    }
}

#[test]
fn with_stdin_a_terminal_fetch_says_it_reads_requests_from_it() {
    let s = server();
    let (mut controller, terminal) = pty();
    let stdin = std::fs::File::options().read(true).write(true).open(&terminal).unwrap();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("outofsync"))
        .args(["fetch", "-q"])
        .env_clear()
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A line, then end-of-file as a terminal gives it: Ctrl-D at the start of a line. Typed
    // ahead, so that a fetch that says nothing still ends (and the test fails instead of hanging).
    controller.write_all(format!("{}\n\x04", s.url("/json?id=7")).as_bytes()).unwrap();
    let (mut said, mut stderr) = (String::new(), BufReader::new(child.stderr.take().unwrap()));
    stderr.read_line(&mut said).unwrap();
    assert!(said.contains("reading requests from stdin (the terminal)") && said.contains("Ctrl-D"), "{said}");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(records(&out.stdout)[0]["json"]["id"], 7);
    drop(stderr);

    let piped = outofsync().args(["fetch", "-q"]).write_stdin(s.url("/json")).output().unwrap();
    assert!(piped.stderr.is_empty(), "not a terminal: nothing to say");
}

#[test]
fn a_url_without_its_scheme_is_named_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    for output in [&[][..], &["-o".as_ref(), out.as_os_str()]] {
        let run = outofsync().args(["fetch", "-q"]).args(output).arg("api.example.com/users/[1-3]").output();
        let run = run.unwrap();
        assert_eq!(run.status.code(), Some(2));
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(err.contains("cannot open api.example.com/users/[1-3]: No such file"), "{err}");
        assert!(err.contains("looks like a URL without its scheme"), "{err}");
        assert!(err.contains("write https://api.example.com/users/[1-3]"), "{err}");
    }
    let line = outofsync().args(["fetch", "-q", "-"]).write_stdin("127.0.0.1:9/json\n").output().unwrap();
    let record = &records(&line.stdout)[0];
    assert_eq!(record["error"]["kind"], "invalid_request");
    let message = record["error"]["message"].as_str().unwrap();
    assert!(message.contains("without its scheme? write it https://127.0.0.1:9/json"), "{message}");
    let missing = outofsync().args(["fetch", "-q", "urls.txt"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&missing.stderr).contains("scheme"), "a file name is not a URL");
}

#[test]
fn an_unterminated_glob_is_an_invalid_request_naming_the_line_and_globoff() {
    let s = server();
    let input = format!("{}\n{}\n", s.url("/json?id=[1-2]"), s.url("/anything?id=[1-"));
    let run = outofsync().args(["fetch", "-q", "-"]).write_stdin(input.clone()).output().unwrap();
    assert_eq!(run.status.code(), Some(1));
    let records = records(&run.stdout);
    assert_eq!(records.len(), 3, "two from the glob, one for the broken line");
    let broken = by_i(&records, 2);
    assert_eq!(broken["error"]["kind"], "invalid_request", "{broken}");
    assert_eq!(broken["attempts"], 0, "nothing sent");
    let message = broken["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("line 2: unterminated glob: the '['"), "{message}");
    assert!(message.contains("-g/--globoff"), "{message}");

    let literal = outofsync().args(["fetch", "-q", "-g", "-"]).write_stdin(input).output().unwrap();
    let records = crate::support::records(&literal.stdout);
    assert_eq!(by_i(&records, 1)["json"]["args"]["id"], "[1-", "-g sends it as it is");
}
