//! Authentication end to end: the real binary against the built-in server's OAuth2 token endpoint
//! and protected endpoints (long runs on short tokens, revocation in flight, rotation under
//! kill -9, failing endpoints, secrets in every file), and against nginx, which checks bearer
//! tokens, API keys and Basic credentials with its own `map` and logs what it received.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::nginx::{AUTH_BEARER, AUTH_KEY, AUTH_QUERY_KEY, AUTH_USER, Listener, Nginx};
use crate::support::{Server, ServerConfig, get_json, http, outofsync, records, records_in, server};

const CLIENT_ID: &str = outofsync_server::OAUTH_CLIENT_ID;
const CLIENT_SECRET: &str = outofsync_server::OAUTH_CLIENT_SECRET;

/// `POST /oauth/control?{query}`: the settings after the change.
fn control(s: &Server, query: &str) -> Value {
    let mut response = http().post(s.url(&format!("/oauth/control?{query}"))).send_empty().unwrap();
    assert_eq!(response.status(), 200, "{query}");
    response.body_mut().read_json().unwrap()
}

fn oauth_stats(s: &Server) -> Value {
    get_json(&s.url("/stats")).1["oauth"].clone()
}

fn stats(s: &Server) -> Value {
    get_json(&s.url("/stats")).1
}

/// The flags of the client credentials grant against `s`, the id and secret in `OID` and `OSEC`.
fn oauth_flags(s: &Server) -> Vec<String> {
    let flags = ["--oauth2-token-url", &s.url("/oauth/token"), "--oauth2-client-id-env", "OID"];
    flags.iter().map(|f| f.to_string()).chain(["--oauth2-client-secret-env".into(), "OSEC".into()]).collect()
}

fn introspect(s: &Server, token: &str) -> Value {
    let mut response = http().post(s.url("/oauth/introspect")).send_form([("token", token)]).unwrap();
    response.body_mut().read_json().unwrap()
}

/// The binary started with `args` and the OAuth2 client's environment; stdout and stderr discarded.
fn spawn_with_client(args: &[String]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("outofsync"))
        .args(args)
        .env_clear()
        .env("OID", CLIENT_ID)
        .env("OSEC", CLIENT_SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts")
}

/// Polls `until` every few milliseconds for at most `limit`.
fn wait_for(limit: Duration, what: &str, mut until: impl FnMut() -> bool) {
    let start = Instant::now();
    while !until() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if start.elapsed() > limit {
            _ = child.kill();
            panic!("the run did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn ten_thousand_requests_on_two_second_tokens_all_succeed_on_a_token_every_two_seconds() {
    let s = ServerConfig::default().threads(2).start().unwrap();
    control(&s, "expires_in=2");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let started = Instant::now();
    let run = outofsync()
        .env("OID", CLIENT_ID)
        .env("OSEC", CLIENT_SECRET)
        .args(["fetch", "-q", "--global-rate", "2000/s", "-o"])
        .arg(&out)
        .args(oauth_flags(&s))
        .arg(s.url("/protected/json?id=[1-10000]"))
        .output()
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let records = records_in(&out);
    assert_eq!(records.len(), 10_000);
    assert!(
        records.iter().all(|r| r["ok"] == true && r["attempts"] == 1),
        "every request went out once, accepted"
    );
    let oauth = oauth_stats(&s);
    let tokens = oauth["token_requests"].as_u64().unwrap();
    eprintln!("10,000 requests in {took:.1} s on 2-second tokens made {tokens} token requests");
    // A token is replaced with a fifth of its life left: one every 1.6 s, and one to begin with.
    assert!(
        tokens as f64 >= took / 2.0 - 1.0 && tokens as f64 <= took / 1.5 + 2.0,
        "{tokens} in {took:.1} s"
    );
    assert_eq!(oauth["authorized"], 10_000);
    for refused in ["expired_token", "missing_token", "unknown_token", "revoked_token"] {
        assert_eq!(oauth[refused], 0, "{refused}: {oauth}");
    }
}

#[test]
fn five_hundred_requests_refused_in_flight_cause_one_token_request_and_each_go_once_more() {
    let s = ServerConfig::default().threads(2).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let mut args: Vec<String> = ["fetch", "-q", "-c", "500", "-o"].map(String::from).into();
    args.push(out.display().to_string());
    args.extend(oauth_flags(&s));
    args.push(s.url("/protected/delay/2500?n=[1-500]"));
    let mut child = spawn_with_client(&args);
    wait_for(Duration::from_secs(60), "500 requests in flight", || {
        stats(&s)["in_flight"].as_u64() >= Some(500)
    });
    assert_eq!(oauth_stats(&s)["token_requests"], 1);
    // The server revokes the token they all carry; each is answered 401 when it is done.
    control(&s, "revoke=access");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(60)), Some(0));
    let oauth = oauth_stats(&s);
    assert_eq!(oauth["token_requests"], 2, "the first token and one more, for all 500: {oauth}");
    assert_eq!(oauth["revoked_token"], 500);
    let records = records_in(&out);
    assert_eq!(records.len(), 500);
    for record in &records {
        assert_eq!(record["ok"], true, "{record}");
        assert_eq!(record["attempts"], 2, "{record}");
        assert_eq!(
            record["history"],
            serde_json::json!([{ "status": 401, "elapsed_ms": record["history"][0]["elapsed_ms"] }])
        );
    }
}

#[test]
fn a_kill_during_refresh_token_rotation_never_loses_the_token_and_the_run_resumes() {
    let s = server();
    // Tokens for a second, and every token answer held back 300 ms after the server rotated.
    control(&s, "expires_in=1&delay_ms=300");
    let dir = tempfile::tempdir().unwrap();
    let (out, token_file) = (dir.path().join("out.jsonl"), dir.path().join("refresh-token"));
    let mut response = http().post(s.url("/oauth/refresh-token")).send_empty().unwrap();
    let first: Value = response.body_mut().read_json().unwrap();
    std::fs::write(&token_file, format!("{}\n", first["refresh_token"].as_str().unwrap())).unwrap();
    let mut args: Vec<String> =
        ["fetch", "-q", "--resume", "--global-rate", "100/s", "-o"].map(String::from).into();
    args.push(out.display().to_string());
    args.extend(["--oauth2-token-url".into(), s.url("/oauth/token"), "--oauth2-refresh-token-file".into()]);
    args.extend([token_file.display().to_string(), s.url("/protected/json?id=[1-600]")]);
    for round in 1..=4u64 {
        let before = oauth_stats(&s)["token_requests"].as_u64().unwrap();
        let mut child = spawn_with_client(&args);
        // Killed while the server holds the answer of this run's rotation number `round`: it has
        // rotated, and the client has not got the new token.
        wait_for(Duration::from_secs(30), "a rotation in flight", || {
            let oauth = oauth_stats(&s);
            oauth["token_in_flight"].as_u64() > Some(0)
                && oauth["token_requests"].as_u64() >= Some(before + round)
        });
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..250)));
        child.kill().unwrap();
        child.wait().unwrap();
        let held = std::fs::read_to_string(&token_file).unwrap();
        assert!(
            held.ends_with('\n') && held.trim().starts_with("rt-"),
            "round {round}: a whole token: {held:?}"
        );
        assert_eq!(introspect(&s, held.trim())["active"], true, "round {round}: {held:?} is still taken");
    }
    let (records_before, _) = crate::support::whole_records(&out);
    let mut child = spawn_with_client(&args);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(60)), Some(0));
    let records = records_in(&out);
    let mut seen: Vec<u64> = records.iter().map(|r| r["i"].as_u64().unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..600).collect::<Vec<_>>(), "each input exactly once");
    assert!(records.iter().all(|r| r["ok"] == true), "every record ok");
    assert!(records_before.len() < 600, "the kills interrupted the run");
    assert!(oauth_stats(&s)["refreshes"].as_u64() >= Some(8), "{}", oauth_stats(&s));
}

/// Every file a run leaves and what it printed, as text.
fn everything(dir: &Path, stderr: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(stderr).into_owned();
    for entry in std::fs::read_dir(dir).unwrap() {
        text += &std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
    }
    text
}

#[test]
fn secrets_appear_nowhere_in_records_logs_summary_or_manifest() {
    use base64::Engine as _;
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let (query_key, header_key, password) = ("query-key-1f0c9b3a", "header-key-8e2d71c4", "pw-7c1e55aa90");
    let run = outofsync()
        .env("OID", CLIENT_ID)
        .env("OSEC", CLIENT_SECRET)
        .env("QKEY", query_key)
        .env("HKEY", header_key)
        .args([
            "fetch",
            "-vv",
            "--no-progress",
            "--api-key-query",
            "api_key=QKEY",
            "--header-env",
            "X-Api-Key: HKEY",
        ])
        .args(oauth_flags(&s))
        .arg("--summary-json")
        .arg(dir.path().join("summary.json"))
        .arg("-o")
        .arg(dir.path().join("out.jsonl"))
        .arg(s.url("/protected/json?id=[1-20]"))
        .arg(s.url("/protected/status/404"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "the 404 fails");
    let records = records_in(&dir.path().join("out.jsonl"));
    assert_eq!(records.iter().filter(|r| r["ok"] == true).count(), 20);
    assert!(
        records.iter().all(|r| !r["url"].as_str().unwrap().contains("api_key")),
        "the key stays off the URL"
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("authorization: (masked)") && stderr.contains("x-api-key: (masked)"), "{stderr}");
    let tokens = control(&s, "")["recent_access_tokens"].clone();
    let token = tokens[0].as_str().unwrap().to_owned();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let text = everything(dir.path(), &run.stderr);
    assert!(
        text.contains("\"i\":20") && text.contains("\"options\""),
        "the records and the manifest were read"
    );
    for secret in [token.as_str(), CLIENT_SECRET, &basic, query_key, header_key] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }

    let dir = tempfile::tempdir().unwrap();
    let run = outofsync()
        .env("BU", "alice")
        .env("BP", password)
        .args(["fetch", "-vv", "--no-progress", "--basic-env", "BU:BP", "--summary-json"])
        .arg(dir.path().join("summary.json"))
        .arg("-o")
        .arg(dir.path().join("out.jsonl"))
        .arg(s.url("/json?id=[1-3]"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0));
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"));
    let text = everything(dir.path(), &run.stderr);
    assert!(text.contains("authorization: (masked)"), "{text}");
    assert!(!text.contains(password) && !text.contains(&encoded), "{text}");
}

#[test]
fn a_token_endpoint_that_refuses_the_client_or_is_down_fails_every_record_as_auth_unsent() {
    let s = server();
    control(&s, "fail=invalid_client");
    let run = outofsync()
        .env("OID", CLIENT_ID)
        .env("OSEC", CLIENT_SECRET)
        .args(["fetch", "--no-progress"])
        .args(oauth_flags(&s))
        .arg(s.url("/protected/json?id=[1-20]"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let refused = records(&run.stdout);
    assert_eq!(refused.len(), 20);
    let message = format!(
        "the token endpoint {} answered 400 Bad Request: invalid_client (client authentication failed)",
        s.url("/oauth/token")
    );
    for record in &refused {
        assert_eq!((&record["error"]["kind"], &record["attempts"]), (&"auth".into(), &0.into()), "{record}");
        assert_eq!(record["error"]["message"], message.as_str());
    }
    assert!(String::from_utf8_lossy(&run.stderr).contains("failures: 20 × auth"));
    let seen = stats(&s);
    assert_eq!(seen["oauth"]["token_requests"], 1, "a refused client is not asked for again");
    assert!(seen["by_path"].get("/protected/json").is_none(), "nothing was sent without a token: {seen}");

    // No token endpoint at all: a port nobody listens on.
    let closed = format!("127.0.0.1:{}", crate::support::ports::lease());
    let run = outofsync()
        .env("OID", CLIENT_ID)
        .env("OSEC", CLIENT_SECRET)
        .args(["fetch", "-q", "--retries", "1", "--backoff", "1ms", "--oauth2-token-url"])
        .arg(format!("http://{closed}/oauth/token"))
        .args(["--oauth2-client-id-env", "OID", "--oauth2-client-secret-env", "OSEC"])
        .arg(s.url("/protected/json?id=[1-5]"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    for record in records(&run.stdout) {
        let message = record["error"]["message"].as_str().unwrap();
        assert_eq!(record["error"]["kind"], "auth");
        assert!(
            message.starts_with(&format!("the token endpoint http://{closed}/oauth/token failed: connect:")),
            "{message}"
        );
        assert!(message.ends_with("(after 2 attempts)"), "{message}");
    }
    assert!(stats(&s)["by_path"].get("/protected/json").is_none());
}

#[test]
fn credentials_go_only_to_their_hosts_and_never_across_a_redirect() {
    let (a, b) = (server(), server());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("urls.txt");
    let away = format!("{}?url={}", a.url("/redirect-to"), b.url("/anything/after-redirect"));
    std::fs::write(
        &input,
        format!("{}\n{}\n{away}\n", a.url("/anything/first?q=1"), b.url("/anything/other")),
    )
    .unwrap();
    let fetch = |extra: &[&str]| {
        let run = outofsync()
            .env("TOKEN", "bearer-5d1f")
            .env("KEY", "header-0c3e")
            .env("QKEY", "query-9a7b")
            .args(["fetch", "-q", "--ordered", "--bearer-env", "TOKEN", "--header-env", "X-Api-Key: KEY"])
            .args(["--api-key-query", "api_key=QKEY"])
            .args(extra)
            .arg(&input)
            .output()
            .unwrap();
        records(&run.stdout)
    };
    let carried = |record: &Value| {
        let echo = &record["json"];
        (
            echo["headers"].get("authorization").is_some(),
            echo["headers"].get("x-api-key").is_some(),
            echo["args"].get("api_key").is_some(),
        )
    };
    let records = fetch(&[]);
    assert_eq!(records[0]["json"]["headers"]["authorization"], "Bearer bearer-5d1f");
    assert_eq!(
        (&records[0]["json"]["headers"]["x-api-key"], &records[0]["json"]["args"]["api_key"]),
        (&"header-0c3e".into(), &"query-9a7b".into())
    );
    assert_eq!(records[0]["url"], a.url("/anything/first?q=1"), "the record's URL has no key");
    assert_eq!(carried(&records[0]), (true, true, true), "the first request's host");
    assert_eq!(carried(&records[1]), (false, false, false), "another host");
    assert_eq!(carried(&records[2]), (false, false, false), "a redirect to another host");
    assert_eq!(records[2]["final_url"], b.url("/anything/after-redirect"));
    // Named hosts get them, whether or not they come first.
    let both = [format!("{}", a.addr()), format!("{}", b.addr())];
    let records = fetch(&["--auth-host", &both[0], "--auth-host", &both[1]]);
    assert_eq!(carried(&records[1]), (true, true, true), "{}", records[1]);
    assert_eq!(carried(&records[2]), (false, false, false), "a redirect still drops them");
}

#[test]
fn usage_errors_name_the_flag_and_what_is_missing() {
    let s = server();
    for (args, env, says) in [
        (
            &["--bearer-env", "TOKEN"][..],
            None,
            "--bearer-env TOKEN: the environment variable TOKEN is not set",
        ),
        (
            &["--bearer-env", "TOKEN"][..],
            Some(""),
            "--bearer-env TOKEN: the environment variable TOKEN is empty",
        ),
        (
            &["-u", "a:b", "--bearer-env", "TOKEN"][..],
            Some("t"),
            "-u and --bearer-env TOKEN both set header authorization",
        ),
        (
            &["-H", "X-Api-Key: x", "--header-env", "X-Api-Key: TOKEN"][..],
            Some("t"),
            "both set the header x-api-key",
        ),
        (
            &["--auth-host", "api.test"][..],
            None,
            "--auth-host names where credentials go, and none are given",
        ),
        (
            &["--oauth2-token-url", "http://127.0.0.1:9/t"][..],
            None,
            "--oauth2-token-url needs --oauth2-client-id-env",
        ),
        (&["--api-key-query", "key"][..], None, "--api-key-query key: give NAME=VAR"),
    ] {
        let mut run = outofsync();
        run.args(["fetch", "-q"]).args(args).arg(s.url("/json"));
        if let Some(value) = env {
            run.env("TOKEN", value);
        }
        let run = run.output().unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert_eq!(stats(&s)["requests"], 0, "nothing was sent");
}

#[test]
fn bearer_api_key_query_and_basic_credentials_reach_nginx_as_it_expects_and_stay_on_their_host() {
    let Some(nginx) = Nginx::start() else { return };
    let port = nginx.port(Listener::Auth);
    let url = |path: &str| nginx.url(Listener::Auth, path);
    let resolve = format!("localhost:{port}:127.0.0.1");
    let fetch = |flags: &[&str], paths: &[&str]| {
        let run = outofsync()
            .env("TOKEN", AUTH_BEARER)
            .env("KEY", AUTH_KEY)
            .env("QKEY", AUTH_QUERY_KEY)
            .env("BU", AUTH_USER.0)
            .env("BP", AUTH_USER.1)
            .args(["fetch", "-q", "--ordered", "--resolve", &resolve])
            .args(flags)
            .args(paths.iter().map(|p| url(p)))
            .output()
            .unwrap();
        records(&run.stdout)
    };
    let statuses =
        |records: &[Value]| records.iter().map(|r| r["status"].as_u64().unwrap()).collect::<Vec<_>>();

    // Without credentials nginx refuses them all: its checks are real.
    let none = fetch(&[], &["/bearer", "/key", "/query", "/basic"]);
    assert_eq!(statuses(&none), [401, 401, 401, 401]);

    let flags =
        ["--bearer-env", "TOKEN", "--header-env", "X-Api-Key: KEY", "--api-key-query", "api_key=QKEY"];
    let keyed = fetch(&flags, &["/bearer", "/key", "/query", "/away"]);
    assert_eq!(statuses(&keyed), [200, 200, 200, 200], "{keyed:?}");
    assert_eq!(keyed[2]["url"], url("/query"), "the record's URL has no key");
    assert_eq!(keyed[3]["final_url"], format!("http://localhost:{port}/elsewhere"));
    let basic = fetch(&["--basic-env", "BU:BP"], &["/basic", "/away"]);
    assert_eq!(statuses(&basic), [200, 200], "{basic:?}");

    let log = nginx.auth_log();
    let seen =
        |uri: &str| log.iter().filter(|l| l.starts_with(&format!("{uri}|"))).cloned().collect::<Vec<_>>();
    let bearer = format!("Bearer {AUTH_BEARER}");
    assert_eq!(
        seen(&format!("/query?api_key={AUTH_QUERY_KEY}")),
        [format!("/query?api_key={AUTH_QUERY_KEY}|200|{bearer}|{AUTH_KEY}|{AUTH_QUERY_KEY}")]
    );
    assert_eq!(seen(&format!("/away?api_key={AUTH_QUERY_KEY}")).len(), 1, "{log:?}");
    // After the redirect to another host: no credential of any kind.
    assert_eq!(seen("/elsewhere"), ["/elsewhere|200|-|-|-", "/elsewhere|200|-|-|-"], "{log:?}");
}

#[test]
fn a_resume_as_someone_else_is_refused_and_one_with_a_changed_password_is_not() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let fetch = |user: &str| {
        outofsync()
            .args(["fetch", "-q", "--resume", "-u", user, "-o"])
            .arg(&out)
            .arg(s.url("/json?id=[1-3]"))
            .output()
            .unwrap()
    };
    assert_eq!(fetch("alice:first-password").status.code(), Some(0));
    assert_eq!(fetch("alice:second-password").status.code(), Some(0), "a new password, the same user");
    let refused = fetch("bob:first-password");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("the credentials (-u, --bearer-env, --oauth2-…, --auth-host) is a different value"),
        "{stderr}"
    );
    let manifest = std::fs::read_to_string(dir.path().join("out.jsonl.manifest.json")).unwrap();
    assert!(!manifest.contains("alice") && !manifest.contains("password"), "{manifest}");
}

#[test]
fn a_resume_sends_credentials_to_the_inputs_first_host_not_to_the_first_one_left() {
    let (a, b) = (server(), server());
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("urls.txt"), dir.path().join("out.jsonl"));
    std::fs::write(&input, format!("{}\n", a.url("/anything/first"))).unwrap();
    let fetch = || {
        let run = outofsync()
            .env("TOKEN", "bearer-a11ce")
            .args(["fetch", "-q", "--resume", "--bearer-env", "TOKEN", "-o"])
            .arg(&out)
            .arg(&input)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    };
    fetch();
    // Lines added at the end: the resume fetches only the new one, on another host.
    std::fs::write(&input, format!("{}\n{}\n", a.url("/anything/first"), b.url("/anything/second"))).unwrap();
    fetch();
    let records = records_in(&out);
    assert_eq!(records[0]["json"]["headers"]["authorization"], "Bearer bearer-a11ce");
    assert!(records[1]["json"]["headers"].get("authorization").is_none(), "{}", records[1]);
}

/// `POST /oauth/token` with a form, as a client of the built-in server would.
fn token_request(s: &Server, form: &[(&str, &str)]) -> (u16, Value) {
    let mut response = http().post(s.url("/oauth/token")).send_form(form.iter().copied()).unwrap();
    (response.status().as_u16(), response.body_mut().read_json().unwrap())
}

#[test]
fn the_token_endpoint_rotates_refresh_tokens_and_takes_the_old_one_until_the_new_one_is_used() {
    let s = server();
    let client = [("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)];
    let (status, issued) =
        token_request(&s, &[[("grant_type", "client_credentials")].as_slice(), &client].concat());
    assert_eq!((status, &issued["token_type"], &issued["expires_in"]), (200, &"Bearer".into(), &3600.into()));
    let (status, refused) =
        token_request(&s, &[("grant_type", "client_credentials"), ("client_id", CLIENT_ID)]);
    assert_eq!((status, &refused["error"]), (400, &"invalid_client".into()));

    let mut grant = http().post(s.url("/oauth/refresh-token")).send_empty().unwrap();
    let r0 = grant.body_mut().read_json::<Value>().unwrap()["refresh_token"].as_str().unwrap().to_owned();
    let refresh =
        |token: &str| token_request(&s, &[("grant_type", "refresh_token"), ("refresh_token", token)]);
    let (_, first) = refresh(&r0);
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r0, r1);
    // The answer was lost: the old token still works, and replaces the unused new one.
    let (status, again) = refresh(&r0);
    let r1b = again["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(status, 200);
    assert_eq!(introspect(&s, &r1)["active"], false, "the unused one is dropped");
    // Once the new access token is used, the old refresh token is done with.
    let bearer = format!("Bearer {}", again["access_token"].as_str().unwrap());
    let used = http().get(s.url("/protected/json")).header("Authorization", &bearer).call().unwrap();
    assert_eq!(used.status(), 200);
    assert_eq!(refresh(&r0).1["error"], "invalid_grant");
    assert_eq!(refresh(&r1b).0, 200);
    let missing = http().get(s.url("/protected/json")).call().unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer realm=\"outofsync\"");
    let oauth = oauth_stats(&s);
    assert_eq!(
        (&oauth["token_requests"], &oauth["refreshes"], &oauth["missing_token"]),
        (&6.into(), &3.into(), &1.into())
    );
}
