//! `fetch --shard K/N`: N processes split one input by index, and their outputs together hold
//! exactly one record per input.

use std::collections::HashSet;

use crate::support::{indexes, outofsync, records_in, server};

#[test]
fn three_shards_concatenated_hold_exactly_one_record_per_input_under_global_indexes() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let lines: String = (0..100).map(|n| s.url(&format!("/json?id={n}")) + "\n").collect();
    std::fs::write(&input, lines).unwrap();
    let mut all = Vec::new();
    for k in 0..3 {
        let out = dir.path().join(format!("out-{k}.jsonl"));
        let shard = format!("{k}/3");
        outofsync()
            .args(["fetch", "-q", "--shard", &shard, "-o", out.to_str().unwrap(), input.to_str().unwrap()])
            .assert()
            .success();
        let records = records_in(&out);
        for record in &records {
            let i = record["i"].as_u64().unwrap();
            assert_eq!(i % 3, k, "shard {shard} holds only its own indexes");
            // The index is the input's own: line i + 1 asked for id i.
            assert_eq!(record["json"]["id"], i, "{record}");
        }
        all.extend(records);
    }
    let seen = indexes(&all);
    assert_eq!(seen.len(), 100);
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), (0..100).collect());
}

#[test]
fn a_resume_with_another_shard_is_refused_and_changes_nothing() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, (0..10).map(|n| s.url(&format!("/json?id={n}")) + "\n").collect::<String>())
        .unwrap();
    let out = dir.path().join("out.jsonl");
    let (out_arg, in_arg) = (out.to_str().unwrap(), input.to_str().unwrap());
    outofsync().args(["fetch", "-q", "--shard", "0/2", "-o", out_arg, in_arg]).assert().success();
    let before = std::fs::read(&out).unwrap();
    let refused = outofsync()
        .args(["fetch", "-q", "--shard", "1/2", "--resume", "-o", out_arg, in_arg])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(err.contains("--shard is 1/2, was 0/2"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    outofsync().args(["fetch", "-q", "--resume", "-o", out_arg, in_arg]).assert().code(2);
    outofsync().args(["fetch", "-q", "--shard", "0/2", "--resume", "-o", out_arg, in_arg]).assert().success();
    assert_eq!(records_in(&out).len(), 5);
}

#[test]
fn fetch_serves_its_metrics_in_prometheus_text_while_it_runs() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, (0..20).map(|_| s.url("/delay/200") + "\n").collect::<String>()).unwrap();
    let addr = format!("127.0.0.1:{}", crate::support::ports::lease());
    let out = dir.path().join("out.jsonl");
    let child = crate::support::spawn(&[
        "fetch",
        "-q",
        "-c",
        "2",
        "--metrics",
        &addr,
        "-o",
        out.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    let start = std::time::Instant::now();
    let text = loop {
        if let Ok(mut response) = crate::support::http().get(&format!("http://{addr}/metrics")).call() {
            let text = response.body_mut().read_to_string().unwrap();
            if text.contains("outofsync_records_total{ok=\"true\"} 2") {
                break text;
            }
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "no metrics");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(text.lines().any(|l| l == "# TYPE outofsync_request_duration_seconds histogram"), "{text}");
    let in_flight = text.lines().find_map(|l| l.strip_prefix("outofsync_in_flight ")).unwrap();
    assert!(in_flight.parse::<u64>().unwrap() > 0, "requests are in flight: {text}");
    let (code, err) = crate::support::finish(child, std::time::Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}");
}
