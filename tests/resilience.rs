//! Being a good client, end to end against the built-in server: retries, `Retry-After` and host
//! cooldowns, pacing, redirects that keep credentials where they belong, and refused input.
//! (The time logic itself is proven on a paused clock in `src/engine/execute/tests.rs`.)

use serde_json::Value;

use crate::support::tls::TlsServer;
use crate::support::{by_i, get_json, outofsync, records, server};

fn encoded(url: &str) -> String {
    form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

#[test]
fn a_flaky_endpoint_succeeds_on_retry_and_the_history_says_what_failed() {
    let s = server();
    let run = outofsync()
        .args(["fetch", "-q", "--retries", "2", "--backoff", "1ms", &s.url("/flaky/2?key=a")])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stdout));
    let r = &records(&run.stdout)[0];
    assert_eq!((r["attempts"].as_u64(), r["json"]["attempt"].as_u64()), (Some(3), Some(3)), "{r}");
    let statuses: Vec<&Value> = r["history"].as_array().unwrap().iter().map(|h| &h["status"]).collect();
    assert_eq!(statuses, [503, 503]);

    let run = outofsync()
        .args(["fetch", "-q", "--retries", "1", "--backoff", "1ms", &s.url("/flaky/2?key=b")])
        .output()
        .unwrap();
    let r = &records(&run.stdout)[0];
    assert_eq!((r["status"].as_u64(), r["attempts"].as_u64()), (Some(503), Some(2)), "{r}");
    assert_eq!(r["error"]["message"], "503 Service Unavailable (after 2 attempts)");
}

#[test]
fn a_paced_run_never_hits_the_servers_rate_limit() {
    let s = server();
    // No retries: a single 429 would be a failed record.
    let run = outofsync()
        .args(["fetch", "-q", "--rate", "20/s", "--retries", "0", &s.url("/ratelimit?rps=20&n=[1-200]")])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let records = records(&run.stdout);
    assert_eq!(records.len(), 200);
    assert!(records.iter().all(|r| r["status"] == 200 && r["attempts"] == 1));
    assert_eq!(get_json(&s.url("/stats")).1["requests"], 200, "nothing was sent twice");
}

#[test]
fn without_a_rate_retries_wait_out_retry_after_and_every_request_succeeds() {
    let s = server();
    let run = outofsync()
        .args(["fetch", "-q", "-c", "64", "--retries", "30", "--backoff", "1ms"])
        .arg(s.url("/ratelimit?rps=20&n=[1-200]"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stdout));
    let records = records(&run.stdout);
    assert_eq!(records.len(), 200);
    let mut throttled = 0;
    for r in &records {
        assert_eq!(r["status"], 200, "{r}");
        let history = r["history"].as_array().map_or(&[][..], Vec::as_slice);
        let told_to_wait = history.iter().filter(|h| h["status"] == 429).count();
        assert_eq!(told_to_wait + 1, r["attempts"].as_u64().unwrap() as usize, "only 429s were retried: {r}");
        // Each 429 said `Retry-After: 1`: the retries after them waited at least that, in all.
        let elapsed = r["elapsed_ms"].as_f64().unwrap();
        assert!(
            elapsed >= 1000.0 * told_to_wait as f64,
            "{told_to_wait} × Retry-After 1 s in {elapsed} ms: {r}"
        );
        throttled += told_to_wait;
    }
    assert!(throttled > 0, "the server's limit was reached, so the test tested something");
}

#[test]
fn credentials_are_dropped_when_a_redirect_changes_origin_and_stay_dropped() {
    let (a, b) = (server(), server());
    let port = a.addr().port();
    let hop = |from: String, to: String| format!("{from}/redirect-to?url={}", encoded(&to));
    let input = [
        hop(a.base_url(), a.url("/anything")),
        hop(a.base_url(), b.url("/anything")),
        hop(format!("http://a.test:{port}"), format!("http://b.test:{port}/anything")),
        hop(a.base_url(), hop(b.base_url(), a.url("/anything"))),
        format!(
            r#"{{"url":"{}","headers":{{"Authorization":"Bearer own","X-Own":"1"}}}}"#,
            hop(a.base_url(), b.url("/anything"))
        ),
    ];
    let run = outofsync()
        .args(["fetch", "-q", "-H", "Authorization: Bearer secret", "-H", "Cookie: session=1"])
        .args(["-H", "Proxy-Authorization: Basic eDp5", "-H", "X-Trace: kept"])
        .args([
            "--resolve",
            &format!("a.test:{port}:127.0.0.1"),
            "--resolve",
            &format!("b.test:{port}:127.0.0.1"),
        ])
        .arg("-")
        .write_stdin(input.join("\n"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stdout));
    let records = records(&run.stdout);
    let seen = |i: u64| by_i(&records, i)["json"]["headers"].clone();
    let credentials = ["authorization", "cookie", "proxy-authorization"];

    let same_origin = seen(0);
    assert_eq!(same_origin["authorization"], "Bearer secret", "{same_origin}");
    assert_eq!(
        (&same_origin["cookie"], &same_origin["proxy-authorization"]),
        (&"session=1".into(), &"Basic eDp5".into())
    );
    for (i, change) in [(1, "another port"), (2, "another host name"), (3, "away and back")] {
        let headers = seen(i);
        for name in credentials {
            assert!(headers.get(name).is_none(), "{name} sent to {change}: {headers}");
        }
        assert_eq!(headers["x-trace"], "kept", "other headers follow: {headers}");
    }
    let own = seen(4);
    assert!(own.get("authorization").is_none() && own["x-own"] == "1", "{own}");
}

#[test]
fn https_only_refuses_a_downgrade_and_redirects_stop_at_the_limit() {
    let s = server();
    let tls = TlsServer::redirecting(&["localhost"], &s.url("/json?id=5"));
    let fetch = |extra: &[&str]| {
        let run = outofsync()
            .args(["fetch", "-q", "--retries", "0", "--resolve", &tls.resolve(), "--cacert"])
            .arg(&tls.cert_file)
            .args(extra)
            .arg(tls.url())
            .output()
            .unwrap();
        records(&run.stdout).remove(0)
    };
    let followed = fetch(&[]);
    assert_eq!(
        (followed["json"]["id"].as_u64(), followed["redirects"].as_u64()),
        (Some(5), Some(1)),
        "{followed}"
    );
    assert_eq!(followed["final_url"], s.url("/json?id=5"));
    let refused = fetch(&["--https-only"]);
    assert_eq!(refused["error"]["kind"], "redirect", "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("from https to http"), "{refused}");

    let run = outofsync()
        .args(["fetch", "-q", "--max-redirects", "3", &s.url("/redirect/3"), &s.url("/redirect/4")])
        .output()
        .unwrap();
    let chains = records(&run.stdout);
    assert_eq!(
        (by_i(&chains, 0)["ok"].as_bool(), by_i(&chains, 0)["redirects"].as_u64()),
        (Some(true), Some(3))
    );
    let over = by_i(&chains, 1);
    assert_eq!(over["error"]["kind"], "redirect");
    assert_eq!(over["error"]["message"], "too many redirects (more than 3)");
    let run =
        outofsync().args(["fetch", "-q", "--max-redirects", "0", &s.url("/redirect/1")]).output().unwrap();
    assert_eq!(records(&run.stdout)[0]["status"], 302, "0 follows none");
}

#[test]
fn oversized_urls_and_control_characters_are_refused_before_sending() {
    let s = server();
    let long = format!("{}?q={}", s.url("/json"), "a".repeat(70 * 1024));
    let input = [
        long,
        format!(r#"{{"url":"{}\u0007"}}"#, s.url("/json")),
        format!(r#"{{"url":"{}","headers":{{"X-Evil":"a\u0000b"}}}}"#, s.url("/json")),
        format!(r#"{{"url":"{}","headers":{{"X-Evil":"a\u001bb"}}}}"#, s.url("/json")),
        s.url("/json"),
    ];
    let run = outofsync().args(["fetch", "-q", "-"]).write_stdin(input.join("\n")).output().unwrap();
    let records = records(&run.stdout);
    for (i, words) in [(0, "over the limit of 65536"), (1, "U+0007"), (2, "NUL"), (3, "U+001B")] {
        let r = by_i(&records, i);
        assert_eq!(
            (r["error"]["kind"].as_str(), r["attempts"].as_u64()),
            (Some("invalid_request"), Some(0)),
            "{r}"
        );
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.contains(words) && message.len() < 1000, "{message:.300} should say {words}");
    }
    assert_eq!(by_i(&records, 4)["ok"], true);
    assert_eq!(get_json(&s.url("/stats")).1["requests"], 1, "only the valid request was sent");
}

#[test]
fn help_shows_every_resilience_default() {
    let help = outofsync().args(["fetch", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for (flag, default) in [
        ("--retries", "2"),
        ("--backoff", "500ms"),
        ("--max-backoff", "30s"),
        ("--max-retry-after", "60s"),
        ("--deadline", "300s"),
        ("--max-redirects", "10"),
        ("--max-body", "32MiB"),
        ("--timeout", "120s"),
        ("--read-timeout", "30s"),
    ] {
        // The flag's entry: its line, and the lines under it up to the next flag.
        let mut lines = help.lines().skip_while(|l| !l.trim_start().starts_with(&format!("{flag} <")));
        let first = lines.next().unwrap_or_else(|| panic!("{flag} is in --help"));
        let entry: Vec<&str> = lines.take_while(|l| !l.trim_start().starts_with('-')).collect();
        assert!(
            entry.iter().any(|l| l.contains(&format!("[default: {default}]"))),
            "{first}\n{}",
            entry.join("\n")
        );
    }
}

#[test]
fn basic_auth_is_sent_and_its_password_stays_out_of_records_logs_and_the_manifest() {
    let s = server();
    // "alice:pw-0f-alice" in base64, as the server sees it.
    let basic = "Basic YWxpY2U6cHctMGYtYWxpY2U=";
    let echo = outofsync().args(["fetch", "-q", "-u", "alice:pw-0f-alice", &s.url("/anything")]).output();
    let echo = records(&echo.unwrap().stdout);
    assert_eq!(echo[0]["json"]["headers"]["authorization"], basic, "{}", echo[0]);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let run = outofsync()
        .args(["fetch", "-vvv", "-u", "alice:pw-0f-alice", "-o"])
        .arg(&out)
        .arg(s.url("/json?id=[1-3]"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0));
    let manifest = std::fs::read_to_string(dir.path().join("out.jsonl.manifest.json")).unwrap();
    let written =
        [std::fs::read_to_string(&out).unwrap(), String::from_utf8_lossy(&run.stderr).into(), manifest];
    for text in written {
        assert!(!text.contains("pw-0f-alice") && !text.contains("YWxpY2U6cHctMGYtYWxpY2U"), "{text}");
    }

    let run = outofsync().args(["fetch", "-u", "alice", &s.url("/json")]).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("give USER:PASSWORD"));
}

#[test]
fn a_summary_of_one_request_and_one_retry_speaks_in_the_singular() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let fetch = || {
        let mut run = outofsync();
        run.args(["fetch", "--no-progress", "--resume", "--retries", "1", "--backoff", "1ms", "-o"])
            .arg(&out)
            .arg(s.url("/flaky/1?key=singular"));
        String::from_utf8(run.output().unwrap().stderr).unwrap()
    };
    let first = fetch();
    assert!(first.starts_with("1 request in ") && first.contains(": 1 ok, 0 failed, 1 retry, "), "{first}");
    let again = fetch();
    assert!(again.contains("resuming: 1 record kept; fetching the rest"), "{again}");
    assert!(again.contains("0 requests in "), "{again}");
}
