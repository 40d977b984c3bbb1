//! Repeatable pulls: conditional requests (`--validators`), incremental runs (`--cursor`,
//! `--state`), child requests (`--then`) and job files (`outofsync run`), against the built-in
//! server and nginx, through kills and resumes.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::nginx::{Listener, Nginx};
use crate::support::{finish, outofsync, records_in, server, spawn, whole_records};

/// Writes `lines` into `dir/name`, one a line; returns the path as text.
fn write_lines(dir: &Path, name: &str, lines: impl IntoIterator<Item = String>) -> String {
    let path = dir.join(name);
    let text: String = lines.into_iter().map(|l| l + "\n").collect();
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs `fetch` with `args` to its end (exit 0) and returns the records of `out`.
fn fetch(args: &[&str], out: &Path) -> Vec<Value> {
    let run = outofsync().args(["fetch", "-q", "--overwrite", "-o"]).arg(out).args(args).output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    records_in(out)
}

/// Starts `fetch` with `args`, waits until `out` holds at least `records` whole records, then kills
/// it with SIGKILL.
fn kill_after(args: &[&str], out: &Path, records: usize) {
    let mut child = spawn(args);
    let start = Instant::now();
    while whole_records(out).0.len() < records {
        assert!(start.elapsed() < Duration::from_secs(60), "no {records} records within a minute");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended before it was killed: {status}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn post(url: &str) -> Value {
    let mut response = crate::support::http().post(url).send_empty().expect("the POST completes");
    serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap()
}

fn not_modified(records: &[Value]) -> usize {
    records.iter().filter(|r| r["not_modified"] == true).count()
}

#[test]
fn a_second_run_over_10000_unchanged_urls_gets_10000_not_modified_records_and_no_body() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let input = write_lines(dir.path(), "in.txt", (0..10_000).map(|n| s.url(&format!("/json?id={n}"))));
    let (out, store) = (dir.path().join("out.jsonl"), dir.path().join("validators"));
    let store_arg = store.to_str().unwrap();
    let first = fetch(&["-c", "64", "--validators", store_arg, &input], &out);
    assert_eq!(first.len(), 10_000);
    assert!(first.iter().all(|r| r["status"] == 200 && r["json"].is_object()), "{}", first[0]);
    let second = fetch(&["-c", "64", "--validators", store_arg, &input], &out);
    assert_eq!(second.len(), 10_000);
    assert_eq!(not_modified(&second), 10_000);
    for record in &second {
        assert!(record["ok"] == true && record["status"] == 304 && record["bytes"] == 0, "{record}");
        assert!(record.get("json").is_none() && record.get("text").is_none(), "{record}");
    }
    // Without the store, the same run gets every body again.
    let plain = fetch(&["-c", "64", &input], &out);
    assert_eq!(not_modified(&plain), 0);
}

#[test]
fn changed_documents_come_back_with_their_bodies_and_the_rest_as_not_modified() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let input = write_lines(dir.path(), "in.txt", (1..=100).map(|n| s.url(&format!("/changes/{n}"))));
    let (out, store) = (dir.path().join("out.jsonl"), dir.path().join("validators"));
    let args = ["--validators", store.to_str().unwrap(), &input];
    assert_eq!(not_modified(&fetch(&args, &out)), 0);
    let touched = post(&s.url("/changes/touch?n=10"))["touched"].clone();
    let touched: HashSet<u64> = touched.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let second = fetch(&args, &out);
    let changed: HashSet<u64> = second
        .iter()
        .filter(|r| r["not_modified"] != true)
        .map(|r| {
            assert_eq!(r["status"], 200, "{r}");
            r["json"]["id"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(changed, touched, "exactly the changed ones have bodies");
    assert_eq!(not_modified(&fetch(&args, &out)), 100, "and their new validators are kept");
}

#[test]
fn a_kill_9_during_a_run_leaves_the_store_as_it_was_and_the_resume_completes_it() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let urls = (1..=1000).map(|n| s.url(&format!("/changes/{n}")));
    let input =
        write_lines(dir.path(), "in.txt", urls.chain((0..2000).map(|n| s.url(&format!("/json?id={n}")))));
    let (out, store) = (dir.path().join("out.jsonl"), dir.path().join("validators"));
    let (out_arg, store_arg) = (out.to_str().unwrap(), store.to_str().unwrap());
    fetch(&["--validators", store_arg, &input], &out);
    let table = std::fs::read(&store).unwrap();
    post(&s.url("/changes/touch?n=200"));

    std::fs::remove_file(&out).unwrap();
    let args =
        ["fetch", "-q", "--rate", "1000/s", "--resume", "--validators", store_arg, "-o", out_arg, &input];
    kill_after(&args, &out, 1500);
    assert!(std::fs::read(&store).unwrap() == table, "an interrupted run leaves the store as it was");
    let unpaced: Vec<&str> = args[..2].iter().chain(&args[4..]).copied().collect();
    let (code, err) = finish(spawn(&unpaced), Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}");
    let records = records_in(&out);
    assert_eq!(records.len(), 3000);
    assert_eq!(records.iter().filter(|r| r["status"] == 200).count(), 200, "the changed ones, once");
    assert!(std::fs::read(&store).unwrap() != table, "the completed resume changes it");
    assert_eq!(not_modified(&fetch(&["--validators", store_arg, &input], &out)), 3000);
}

#[test]
fn nginx_etags_and_dates_make_unchanged_files_304s_with_no_body_bytes() {
    let Some(nginx) = Nginx::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let www = nginx.dir().join("www/pull");
    std::fs::create_dir_all(&www).unwrap();
    for n in 0..200 {
        std::fs::write(www.join(format!("{n}.json")), format!("{{\"n\":{n}}}\n")).unwrap();
    }
    let input = write_lines(
        dir.path(),
        "in.txt",
        (0..200).map(|n| nginx.url(Listener::H1, &format!("/pull/{n}.json"))),
    );
    let (out, store) = (dir.path().join("out.jsonl"), dir.path().join("validators"));
    let args = ["--validators", store.to_str().unwrap(), &input];
    fetch(&args, &out);
    let second = fetch(&args, &out);
    assert_eq!(not_modified(&second), 200);
    let logged = nginx.requests(Listener::H1);
    let last: Vec<_> = logged[logged.len() - 200..].to_vec();
    assert!(last.iter().all(|e| e.status == 304 && e.body_bytes == 0), "{last:?}");

    // A changed file: another size and a later time, so another ETag and Last-Modified.
    let later = std::time::SystemTime::now() + Duration::from_secs(100);
    for n in 0..20 {
        let path = www.join(format!("{n}.json"));
        std::fs::write(&path, format!("{{\"n\":{n},\"changed\":true}}\n")).unwrap();
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
    }
    let third = fetch(&args, &out);
    let bodies: HashMap<u64, &Value> =
        third.iter().filter(|r| r["status"] == 200).map(|r| (r["json"]["n"].as_u64().unwrap(), r)).collect();
    assert_eq!(bodies.len(), 20);
    assert!(bodies.values().all(|r| r["json"]["changed"] == true));
    assert_eq!(not_modified(&third), 180);
    assert_eq!(not_modified(&fetch(&args, &out)), 200);
}

/// The ids of the items in `records` (pages of `/changes`), each page's in order.
fn item_ids(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .flat_map(|r| r["json"]["items"].as_array().unwrap_or_else(|| panic!("a page: {r}")).clone())
        .map(|item| item["id"].as_u64().unwrap())
        .collect()
}

fn saved_cursor(state: &Path) -> Value {
    let doc: Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    doc["cursor"].clone()
}

/// The arguments of an incremental pull of `/changes` on `s`, `per_page` items a page.
fn incremental<'a>(url: &'a str, state: &'a str, lookback: &'a str) -> Vec<&'a str> {
    let mut args = vec![url, "--paginate", "json:.next", "--cursor", ".items[].updated_at"];
    args.extend(["--state", state, "--initial", "1970-01-01T00:00:00Z", "--lookback", lookback]);
    args
}

#[test]
fn three_incremental_runs_fetch_exactly_what_changed_in_between_and_the_lookback_margin() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let (out, state) = (dir.path().join("out.jsonl"), dir.path().join("state.json"));
    let url = s.url("/changes?since={cursor}&per_page=100");
    let args = incremental(&url, state.to_str().unwrap(), "3s");

    let first = item_ids(&fetch(&args, &out));
    assert_eq!(first.len(), 1000);
    assert_eq!(saved_cursor(&state), "2026-01-01T02:16:40+02:00", "item 1000, the newest");

    assert_eq!(post(&s.url("/changes/touch?n=7"))["touched"], serde_json::json!([1, 2, 3, 4, 5, 6, 7]));
    let second: HashSet<u64> = item_ids(&fetch(&args, &out)).into_iter().collect();
    let margin = [998, 999, 1000];
    assert_eq!(second, (1..=7).chain(margin).collect(), "the 7 changed, and the 3 s before the cursor");
    // Item 7 is the newest; item 6, an hour-offset string that sorts after it as text, is not.
    assert_eq!(saved_cursor(&state), "2026-01-01T00:16:47Z");

    post(&s.url("/changes/touch?n=5"));
    let third: HashSet<u64> = item_ids(&fetch(&args, &out)).into_iter().collect();
    assert_eq!(third, (8..=12).chain([5, 6, 7]).collect());
    assert_eq!(saved_cursor(&state), "2026-01-01T02:16:52+02:00");

    let nothing = item_ids(&fetch(&args, &out));
    assert_eq!(nothing, [10, 11, 12], "no change: only the margin");
}

#[test]
fn an_interrupted_incremental_run_resumed_saves_the_state_of_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, interrupt: bool| {
        let s = server();
        let (out, state) =
            (dir.path().join(format!("{name}.jsonl")), dir.path().join(format!("{name}.json")));
        let url = s.url("/changes?since={cursor}&per_page=1");
        let args = incremental(&url, state.to_str().unwrap(), "0s");
        fetch(&args, &out);
        post(&s.url("/changes/touch?n=300"));
        let before = std::fs::read(&state).unwrap();
        let mut resume = vec!["fetch", "-q", "--resume", "-o", out.to_str().unwrap()];
        resume.extend(&args);
        std::fs::remove_file(&out).unwrap();
        if interrupt {
            let paced: Vec<&str> = resume.iter().copied().chain(["--rate", "100/s"]).collect();
            kill_after(&paced, &out, 100);
            assert!(std::fs::read(&state).unwrap() == before, "an interrupted run leaves the state");
        }
        let (code, err) = finish(spawn(&resume), Duration::from_secs(60));
        assert_eq!(code, Some(0), "{err}");
        let records = records_in(&out);
        let ids = item_ids(&records);
        assert_eq!(ids.len(), 300, "one record per page, every page once");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 300);
        saved_cursor(&state)
    };
    let whole = run("whole", false);
    assert_eq!(whole, "2026-01-01T02:21:40+02:00", "item 300, the newest");
    assert_eq!(run("resumed", true), whole);
}

/// What a record is the one record of: (parent's i, parent's page) for a child, its own i and page.
type Key = (Option<(u64, Option<u64>)>, u64, Option<u64>);

fn key(record: &Value) -> Key {
    let parent = record.get("parent").map(|p| (p["i"].as_u64().unwrap(), p["page"].as_u64()));
    (parent, record["i"].as_u64().unwrap(), record["page"].as_u64())
}

/// Asserts that no two records of `records` share a key, and returns the keys.
fn exactly_once(records: &[Value]) -> HashSet<Key> {
    let keys: HashSet<Key> = records.iter().map(key).collect();
    assert_eq!(keys.len(), records.len(), "a key recorded twice");
    keys
}

#[test]
fn a_hundred_parents_with_fifty_children_each_keep_one_record_each_through_kill_9_and_resume_in_both_orders()
{
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let parents = (1..=100).map(|p| s.url(&format!("/users?page={p}&per_page=50&total=5000")));
    let input = write_lines(dir.path(), "in.txt", parents);
    let child = s.url("/users/{id}");
    for ordered in [false, true] {
        let out = dir.path().join(format!("out-{ordered}.jsonl"));
        let mut args = vec!["fetch", "-q", "--resume", "-o", out.to_str().unwrap(), &input];
        args.extend(["--then", &child, "--then-from", ".users[]"]);
        if ordered {
            args.push("--ordered");
        }
        let paced: Vec<&str> = args.iter().copied().chain(["--rate", "1500/s"]).collect();
        kill_after(&paced, &out, 1500);
        kill_after(&paced, &out, 3000);
        let (code, err) = finish(spawn(&args), Duration::from_secs(60));
        assert_eq!(code, Some(0), "{err}");
        let records = records_in(&out);
        let keys = exactly_once(&records);
        let want: HashSet<Key> = (0..100)
            .map(|p| (None, p, None))
            .chain((0..100).flat_map(|p| (0..50).map(move |c| (Some((p, None)), c, None))))
            .collect();
        assert_eq!(keys, want, "ordered: {ordered}");
        for record in records.iter().filter(|r| r.get("parent").is_some()) {
            let (p, c) = (record["parent"]["i"].as_u64().unwrap(), record["i"].as_u64().unwrap());
            assert_eq!(record["json"]["id"], p * 50 + c + 1, "{record}");
            assert_eq!(record["id"], p * 50 + c + 1, "an object's id is the child record's id");
        }
        if ordered {
            // Each parent, then its children in order.
            let expected: Vec<Key> = (0..100)
                .flat_map(|p| {
                    std::iter::once((None, p, None)).chain((0..50).map(move |c| (Some((p, None)), c, None)))
                })
                .collect();
            assert_eq!(records.iter().map(key).collect::<Vec<_>>(), expected);
        }
    }
}

#[test]
fn children_follow_paginated_parents_and_walk_their_own_pages_in_order() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let parent = s.url("/users?per_page=10&total=30");
    let child = s.url("/items?per_page=5&total={id}");
    let args =
        [&parent, "--paginate", "json:.next", "--then", &child, "--then-from", ".users[]", "--ordered"];
    let records = fetch(&args, &out);
    exactly_once(&records);
    let mut expected = Vec::new();
    for page in 0..3u64 {
        expected.push((None, 0, Some(page)));
        for c in 0..10u64 {
            let id = page * 10 + c + 1;
            for child_page in 0..id.div_ceil(5) {
                expected.push((Some((0, Some(page))), c, Some(child_page)));
            }
        }
    }
    assert_eq!(records.iter().map(key).collect::<Vec<_>>(), expected);
    assert!(records.iter().all(|r| r["ok"] == true), "{:?}", records.iter().find(|r| r["ok"] != true));
}

#[test]
fn a_child_value_that_does_not_fill_the_template_is_its_own_invalid_record() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let parent = s.url("/users?per_page=3&total=3");
    let child = s.url("/users/{uid}");
    let run = outofsync()
        .args(["fetch", "-q", "-o"])
        .arg(&out)
        .args([&parent, "--then", &child, "--then-from", ".users[]"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let records = records_in(&out);
    assert_eq!(records.len(), 4);
    for record in &records[1..] {
        assert_eq!(record["error"]["kind"], "invalid_request", "{record}");
        assert!(record["error"]["message"].as_str().unwrap().contains("\"uid\""), "{record}");
        assert_eq!(record["parent"]["i"], 0);
    }
}

#[test]
fn not_modified_and_child_records_match_the_json_schema() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let schema: Value = serde_json::from_str(include_str!("../schema/record.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let out = dir.path().join("out.jsonl");
    let store = dir.path().join("validators");
    let parent = s.url("/users?per_page=2&total=4");
    let child = s.url("/changes/{id}");
    let args = [&parent, "--paginate", "json:.next", "--then", &child, "--then-from", ".users[]"];
    let mut args = args.to_vec();
    args.extend(["--validators", store.to_str().unwrap()]);
    fetch(&args, &out);
    let records = fetch(&args, &out);
    // The parents come whole, as their bodies give the children; the children are unchanged.
    assert_eq!(not_modified(&records), 4);
    assert_eq!(records.len(), 6);
    for record in &records {
        let errors: Vec<String> = validator.iter_errors(record).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{record}: {errors:?}");
    }
}

/// Writes the job file of `fetch ARGS` (by `--dump-job`) to `dir/job.toml` and returns its path.
fn dump_job(dir: &Path, args: &[&str]) -> std::path::PathBuf {
    let dump = outofsync().arg("fetch").args(args).arg("--dump-job").output().unwrap();
    assert_eq!(dump.status.code(), Some(0), "{}", String::from_utf8_lossy(&dump.stderr));
    let path = dir.join("job.toml");
    std::fs::write(&path, &dump.stdout).unwrap();
    path
}

/// What a record says of its answer, without what changes from one run to the next.
fn answer(record: &Value) -> (Value, Value, Value, Value) {
    (record["i"].clone(), record["url"].clone(), record["status"].clone(), record["json"].clone())
}

#[test]
fn a_job_file_dumped_from_a_command_line_runs_as_that_command_line() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let (by_flags, by_job) = (dir.path().join("flags.jsonl"), dir.path().join("job.jsonl"));
    let urls: Vec<String> = (0..20).map(|n| s.url(&format!("/json?id={n}"))).collect();
    let mut args = vec!["--ordered", "--concurrency", "4", "-H", "X-Team: blue", "--jq", ".id"];
    args.extend(urls.iter().map(String::as_str));
    let expected = fetch(&args, &by_flags);

    let job = dump_job(dir.path(), &[&args[..], &["-o", by_job.to_str().unwrap()]].concat());
    let text = std::fs::read_to_string(&job).unwrap();
    assert!(text.contains("concurrency = 4\n") && text.contains("ordered = true\n"), "{text}");
    let run = outofsync().arg("run").arg(&job).arg("-q").output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let got = records_in(&by_job);
    assert_eq!(got.iter().map(answer).collect::<Vec<_>>(), expected.iter().map(answer).collect::<Vec<_>>());
    assert_eq!(got[3]["json"], 3);

    let shown = outofsync().arg("run").arg("--print-flags").arg(&job).output().unwrap();
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert!(
        shown.starts_with("outofsync fetch --concurrency 4 --header 'X-Team: blue' --jq .id --output "),
        "{shown}"
    );
    assert!(shown.trim_end().ends_with(&format!("-- {}", shell_quoted(&urls).join(" "))), "{shown}");
}

fn shell_quoted(args: &[String]) -> Vec<String> {
    args.iter().map(|a| format!("'{a}'")).collect()
}

#[test]
fn a_resume_with_a_changed_job_file_is_refused_and_keeps_every_record() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let urls: Vec<String> = (0..50).map(|n| s.url(&format!("/json?id={n}"))).collect();
    let mut args = vec!["-q", "-o", out.to_str().unwrap(), "--jq", ".id"];
    args.extend(urls.iter().map(String::as_str));
    let job = dump_job(dir.path(), &args);
    let run = outofsync().arg("run").arg(&job).output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let before = std::fs::read(&out).unwrap();

    let again = outofsync().arg("run").arg(&job).arg("--resume").output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", String::from_utf8_lossy(&again.stderr));
    let text = std::fs::read_to_string(&job).unwrap().replace("jq = \".id\"", "jq = \".name\"");
    std::fs::write(&job, text).unwrap();
    let changed = outofsync().arg("run").arg(&job).arg("--resume").output().unwrap();
    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert_eq!(changed.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot resume") && stderr.contains("the job file"), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), before, "the records are kept");
}

#[test]
fn a_typo_in_a_job_file_is_an_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "inputs = [\"urls.txt\"]\n\n# limits\nconcurency = 4\n").unwrap();
    let run = outofsync().arg("run").arg(&job).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("job.toml line 4: `concurency` is not a flag of fetch (did you mean `concurrency`?)"),
        "{stderr}"
    );

    std::fs::write(&job, "inputs = [\"urls.txt\"]\nconcurrency = \"many\"\n").unwrap();
    let run = outofsync().arg("run").arg(&job).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("job.toml line 2: invalid value 'many' for '--concurrency"), "{stderr}");
}

#[test]
fn nginx_lists_and_their_details_over_http2_are_one_record_each_and_the_details_304_next_time() {
    let Some(nginx) = Nginx::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let www = nginx.dir().join("www/team");
    std::fs::create_dir_all(&www).unwrap();
    // Four pages of a list, 25 users each, each page naming the next; a file per user.
    for page in 0..4u64 {
        let users: Vec<String> = (0..25).map(|k| format!("{{\"id\":{}}}", page * 25 + k + 1)).collect();
        let next = if page < 3 {
            format!("\"{}\"", nginx.url(Listener::TlsH2, &format!("/team/list-{}.json", page + 1)))
        } else {
            "null".to_owned()
        };
        let list = format!("{{\"users\":[{}],\"next\":{next}}}\n", users.join(","));
        std::fs::write(www.join(format!("list-{page}.json")), list).unwrap();
    }
    for id in 1..=100 {
        std::fs::write(www.join(format!("{id}.json")), format!("{{\"id\":{id},\"name\":\"user {id}\"}}\n"))
            .unwrap();
    }
    let (out, store) = (dir.path().join("out.jsonl"), dir.path().join("validators"));
    let (list, child) =
        (nginx.url(Listener::TlsH2, "/team/list-0.json"), nginx.url(Listener::TlsH2, "/team/{id}.json"));
    let mut args =
        vec![list.as_str(), "--paginate", "json:.next", "--then", &child, "--then-from", ".users[]"];
    args.extend(["--ordered", "--validators", store.to_str().unwrap()]);
    let tls = nginx.args(Listener::TlsH2);
    args.extend(tls.iter().map(String::as_str));

    let first = fetch(&args, &out);
    exactly_once(&first);
    assert_eq!(first.len(), 4 + 100);
    assert!(first.iter().all(|r| r["ok"] == true && r["http"] == "2"), "{first:?}");
    let children: Vec<&Value> = first.iter().filter(|r| r.get("parent").is_some()).collect();
    for (n, record) in children.iter().enumerate() {
        assert_eq!(record["parent"]["page"], n as u64 / 25, "{record}");
        assert_eq!(record["json"]["name"], format!("user {}", n + 1));
    }

    // The lists are fetched whole (their bodies give the details); the details are all 304s.
    let second = fetch(&args, &out);
    assert_eq!(second.iter().map(key).collect::<Vec<_>>(), first.iter().map(key).collect::<Vec<_>>());
    assert_eq!(not_modified(&second), 100);
    let logged = nginx.requests(Listener::TlsH2);
    let last = &logged[logged.len() - 104..];
    let details = last.iter().filter(|e| !e.uri.contains("list-"));
    assert!(details.clone().count() == 100 && details.clone().all(|e| e.status == 304 && e.body_bytes == 0));
    assert!(last.iter().all(|e| e.protocol == "HTTP/2.0"), "{last:?}");
}
