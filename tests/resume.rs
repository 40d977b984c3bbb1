//! Interruptions: kill -9, a torn last line, a full disk, SIGTERM, a changed input, a second run.
//! After each and a `--resume`, the output holds exactly one record per input.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{
    finish, get_json, indexes, outofsync, records_in, server, signal, spawn, whole_records,
};

/// Writes `n` request lines made by `line` into `dir/in.txt`.
fn input(dir: &Path, n: u64, mut line: impl FnMut(u64) -> String) -> String {
    let path = dir.join("in.txt");
    let text: String = (0..n).map(|i| line(i) + "\n").collect();
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Asserts that `out` holds exactly one whole record for each of `0..n`, and nothing else.
fn assert_exactly_once(out: &Path, n: u64) {
    let (records, torn) = whole_records(out);
    assert!(torn.is_empty(), "a torn tail is left: {:?}", String::from_utf8_lossy(&torn));
    let seen = indexes(&records);
    assert_eq!(seen.len() as u64, n, "one record per input");
    assert_eq!(seen.iter().copied().collect::<HashSet<u64>>(), (0..n).collect(), "every index once");
}

#[test]
fn killed_at_random_moments_and_resumed_the_output_holds_each_input_exactly_once() {
    // OUTOFSYNC_KILLS=200 runs it longer, outside CI.
    let kills: u32 = std::env::var("OUTOFSYNC_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let delays: Vec<u32> = (0..10_000).map(|_| rng.u32(0..=30)).collect();
    let input = input(dir.path(), 10_000, |i| s.url(&format!("/delay/{}", delays[i as usize])));
    let out = dir.path().join("out.jsonl");
    let out_arg = out.to_str().unwrap();
    let args = ["fetch", "-q", "-c", "128", "--resume", "-o", out_arg, &input];
    let mut before = 0;
    for _ in 0..kills {
        let mut child = spawn(&args);
        std::thread::sleep(Duration::from_millis(rng.u64(20..=300)));
        child.kill().unwrap();
        child.wait().unwrap();
        // Between runs: every whole line is a record of a distinct input; only the end may be torn.
        let (records, _torn) = whole_records(&out);
        let seen = indexes(&records);
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len(), "no input twice");
        assert!(seen.len() >= before, "records are never lost: {} then {}", before, seen.len());
        before = seen.len();
    }
    let (code, err) = finish(spawn(&args), Duration::from_secs(120));
    assert_eq!(code, Some(0), "{err}");
    assert_exactly_once(&out, 10_000);
}

#[test]
fn a_torn_last_line_or_trailing_garbage_is_cut_and_resumed() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 200, |i| s.url(&format!("/json?id={i}")));
    let out = dir.path().join("out.jsonl");
    let run = || outofsync().args(["fetch", "-q", "--resume", "-o"]).arg(&out).arg(&input).output().unwrap();
    assert_eq!(run().status.code(), Some(0));
    assert_exactly_once(&out, 200);

    // A write killed mid-line: the last record is cut short, so its input is fetched again.
    let bytes = std::fs::read(&out).unwrap();
    let last = indexes(&records_in(&out))[199];
    std::fs::write(&out, &bytes[..bytes.len() - 20]).unwrap();
    let resumed = run();
    assert_eq!(resumed.status.code(), Some(0));
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(err.is_empty(), "quiet: {err}");
    assert_exactly_once(&out, 200);
    assert_eq!(indexes(&records_in(&out))[199], last, "the cut record was fetched again, at the end");

    // Garbage with no newline after whole records (a crash of the file system, say): cut.
    let mut bytes = std::fs::read(&out).unwrap();
    bytes.extend_from_slice(b"\0\0\0{\"i\":3,\"ok\"");
    std::fs::write(&out, &bytes).unwrap();
    assert_eq!(run().status.code(), Some(0));
    assert_exactly_once(&out, 200);
}

#[test]
fn a_whole_line_that_is_not_a_record_is_refused_and_left_alone() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 20, |i| s.url(&format!("/json?id={i}")));
    let out = dir.path().join("out.jsonl");
    outofsync().args(["fetch", "-q", "-o"]).arg(&out).arg(&input).assert().code(0);
    let mut bytes = std::fs::read(&out).unwrap();
    let second_line = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    bytes.splice(second_line..second_line, b"not a record\n".iter().copied());
    std::fs::write(&out, &bytes).unwrap();
    let run = outofsync().args(["fetch", "-q", "--resume", "-o"]).arg(&out).arg(&input).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("line 2 is not a record"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), bytes, "untouched");
}

#[test]
fn a_full_disk_ends_the_run_at_once_with_exit_2_and_a_clear_message() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    // Fetching all of these would take 10 s: the run must stop at the first failed write.
    let input = input(dir.path(), 1_000, |_| s.url("/delay/100"));
    let start = Instant::now();
    let run = outofsync().args(["fetch", "-q", "-c", "10", "-o", "/dev/full", &input]).output().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("cannot write to /dev/full: No space left on device"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(elapsed < Duration::from_secs(3), "stopped at the first failed write, not after {elapsed:?}");
}

#[test]
fn sigterm_exits_143_within_the_grace_period_and_the_resume_writes_exactly_the_rest() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 600, |i| s.url(&format!("/delay/{}", 50 + i % 100)));
    let out = dir.path().join("out.jsonl");
    let out_arg = out.to_str().unwrap();
    let child = spawn(&["fetch", "-c", "20", "--grace", "2s", "--no-progress", "-o", out_arg, &input]);
    std::thread::sleep(Duration::from_millis(700));
    signal(&child, libc::SIGTERM);
    let signalled = Instant::now();
    let (code, err) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(143), "{err}");
    assert!(signalled.elapsed() < Duration::from_secs(3), "within --grace 2s (and a margin)");
    assert!(err.contains("SIGTERM") && err.contains("--resume"), "{err}");
    let (first, torn) = whole_records(&out);
    assert!(torn.is_empty(), "a graceful stop leaves whole lines only");
    assert!(!first.is_empty() && first.len() < 600, "stopped mid-run: {} records", first.len());

    let resumed =
        outofsync().args(["fetch", "-c", "50", "--resume", "-o", out_arg, &input]).output().unwrap();
    assert_eq!(resumed.status.code(), Some(0));
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(err.contains(&format!("resuming: {} records kept", first.len())), "{err}");
    assert!(err.contains(&format!("{} requests in", 600 - first.len())), "exactly the rest: {err}");
    assert_exactly_once(&out, 600);
}

#[test]
fn after_the_grace_period_requests_in_flight_are_cancelled_and_a_second_signal_quits_at_once() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    // Requests long enough that waiting for them (4 s) cannot pass for cancelling them.
    let input = input(dir.path(), 20, |_| s.url("/delay/4000"));
    let out = dir.path().join("out.jsonl");
    let out_arg = out.to_str().unwrap();

    let child = spawn(&["fetch", "-q", "-c", "20", "--grace", "200ms", "-o", out_arg, &input]);
    std::thread::sleep(Duration::from_millis(400));
    signal(&child, libc::SIGINT);
    let signalled = Instant::now();
    let (code, err) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{err}");
    assert!(
        signalled.elapsed() < Duration::from_millis(1200),
        "cancelled after 200ms, not after the 4 s requests"
    );
    assert!(records_in(&out).is_empty(), "cancelled requests leave no record");

    let child = spawn(&["fetch", "-q", "-c", "20", "--grace", "60s", "--resume", "-o", out_arg, &input]);
    std::thread::sleep(Duration::from_millis(400));
    signal(&child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    signal(&child, libc::SIGTERM);
    let signalled = Instant::now();
    let (code, err) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(143), "{err}");
    assert!(signalled.elapsed() < Duration::from_millis(1000), "the second signal does not wait for --grace");

    outofsync().args(["fetch", "-q", "-c", "20", "--resume", "-o", out_arg, &input]).assert().code(0);
    assert_exactly_once(&out, 20);
}

#[test]
fn a_changed_input_or_changed_options_are_refused_and_the_output_is_untouched() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 50, |i| s.url(&format!("/json?id={i}")));
    let out = dir.path().join("out.jsonl");
    let manifest = dir.path().join("out.jsonl.manifest.json");
    outofsync().args(["fetch", "-q", "-o"]).arg(&out).arg(&input).assert().code(0);
    let (records, manifest_text) = (std::fs::read(&out).unwrap(), std::fs::read(&manifest).unwrap());
    let resume = |extra: &[&str]| {
        let run = outofsync().args(["fetch", "-q", "--resume", "-o"]).arg(&out).args(extra).output().unwrap();
        assert_eq!(run.status.code(), Some(2), "refused");
        assert_eq!(std::fs::read(&out).unwrap(), records, "output untouched");
        assert_eq!(std::fs::read(&manifest).unwrap(), manifest_text, "manifest untouched");
        String::from_utf8_lossy(&run.stderr).into_owned()
    };

    let err = resume(&["-X", "POST", &input]);
    assert!(err.contains("--method is POST, was default"), "{err}");
    let err = resume(&["-H", "Authorization: Bearer secret", &input]);
    assert!(err.contains("request headers") && !err.contains("secret"), "{err}");
    let err = resume(&[&s.url("/json?id=[0-49]")]);
    assert!(err.contains("the input is http"), "{err}");

    let original = std::fs::read_to_string(&input).unwrap();
    // A line removed: every input after it would move up an index.
    std::fs::write(&input, original.split_once('\n').unwrap().1).unwrap();
    let err = resume(&[&input]);
    assert!(err.contains("changed: its size is"), "{err}");
    assert!(err.contains("--assume-same-input resumes anyway"), "{err}");
    assert!(err.contains("--overwrite would start over, losing every record"), "{err}");
    let text = original + &s.url("/json?id=50");

    let err = resume(&["-"]);
    assert!(err.contains("the input is stdin") && err.contains("--assume-same-input"), "{err}");
    // The user's word is taken for stdin, and indexes stay those of the first run.
    let run = outofsync()
        .args(["fetch", "-q", "--resume", "--assume-same-input", "-o"])
        .arg(&out)
        .arg("-")
        .write_stdin(text)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    assert_exactly_once(&out, 51);
}

#[test]
fn a_second_run_on_the_same_output_is_refused_while_the_first_holds_it() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 40, |_| s.url("/delay/2000"));
    let out = dir.path().join("out.jsonl");
    let out_arg = out.to_str().unwrap();
    let first = spawn(&["fetch", "-q", "-c", "40", "-o", out_arg, &input]);
    // The first run's manifest is there once it holds the output.
    let start = Instant::now();
    while !dir.path().join("out.jsonl.manifest.json").exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "the first run starts");
        std::thread::sleep(Duration::from_millis(10));
    }
    for flag in ["--resume", "--overwrite"] {
        let run = outofsync().args(["fetch", "-q", flag, "-o", out_arg, &input]).output().unwrap();
        assert_eq!(run.status.code(), Some(2));
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(err.contains("being written by another outofsync run"), "{flag}: {err}");
    }
    let (code, err) = finish(first, Duration::from_secs(30));
    assert_eq!(code, Some(0), "the first run was not disturbed: {err}");
    assert_exactly_once(&out, 40);
}

#[test]
fn retry_failed_fetches_failed_inputs_again_and_keeps_one_record_each() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    // Every third input fails once (503), then passes.
    let input = input(dir.path(), 30, |i| {
        if i % 3 == 0 { s.url(&format!("/flaky/1?key=retry-{i}")) } else { s.url(&format!("/json?id={i}")) }
    });
    let out = dir.path().join("out.jsonl");
    let fetch = |extra: &[&str]| {
        outofsync()
            .args(["fetch", "-q", "--retries", "0", "-o"])
            .arg(&out)
            .args(extra)
            .arg(&input)
            .output()
            .unwrap()
    };
    assert_eq!(fetch(&[]).status.code(), Some(1));
    let failed = |out: &Path| records_in(out).iter().filter(|r| r["ok"] == false).count();
    assert_eq!(failed(&out), 10);

    // A plain resume keeps failed records: they are records.
    let plain = fetch(&["--resume"]);
    assert_eq!(plain.status.code(), Some(0), "nothing fetched, nothing failed");
    assert_eq!(failed(&out), 10);

    let again = fetch(&["--resume", "--retry-failed"]);
    assert_eq!(again.status.code(), Some(0), "{}", String::from_utf8_lossy(&again.stderr));
    assert_exactly_once(&out, 30);
    assert_eq!(failed(&out), 0);
    assert!(
        !dir.path().join("out.jsonl.retry.tmp").exists(),
        "the rewrite's file was renamed over the output"
    );
}

#[test]
fn at_most_once_never_sends_a_post_twice_across_a_kill() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    // Four slow POSTs first, in flight when the process is killed; then sixteen quick ones.
    let input = input(dir.path(), 20, |i| {
        let path = if i < 4 { "/delay/5000".to_owned() } else { format!("/anything/{i}") };
        format!(r#"{{"url":"{}","method":"POST","body":"x"}}"#, s.url(&path))
    });
    let out = dir.path().join("out.jsonl");
    let out_arg = out.to_str().unwrap();
    // One slot more than the slow POSTs can take, so that the quick ones always get through.
    let args = ["fetch", "-q", "-c", "5", "--at-most-once", "--resume", "-o", out_arg, &input];
    let mut child = spawn(&args);
    let started = Instant::now();
    // Until the quick ones are recorded and the slow ones are all at the server.
    while records_in_so_far(&out) < 16 || get_json(&s.url("/stats")).1["in_flight"] != 4 {
        assert!(started.elapsed() < Duration::from_secs(30), "the first run did not get that far");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let noted = std::fs::read_to_string(dir.path().join("out.jsonl.sent")).unwrap();
    let noted: HashSet<u64> = noted.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(noted, (0..20).collect(), "each POST noted before it went out");

    // Without the promise, the resume is refused: it would send those four again.
    let refused = outofsync().args(["fetch", "-q", "--resume", "-o", out_arg, &input]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--at-most-once"));

    let (code, err) = finish(spawn(&args), Duration::from_secs(60));
    assert_eq!(code, Some(1), "four failures: {err}");
    assert_exactly_once(&out, 20);
    for record in records_in(&out) {
        let i = record["i"].as_u64().unwrap();
        if i < 4 {
            assert_eq!(record["error"]["kind"], "io", "{record}");
            assert!(record["error"]["message"].as_str().unwrap().contains("not sent again"), "{record}");
            assert_eq!(record["method"], "POST");
            assert!(record["url"].as_str().unwrap().ends_with("/delay/5000"));
        } else {
            assert_eq!(record["ok"], true, "{record}");
        }
    }
    // The server saw each slow POST once: none was sent again.
    assert_eq!(get_json(&s.url("/stats")).1["by_path"]["/delay/5000"], 4);
}

/// The whole records in `out` so far (none if it does not exist yet).
fn records_in_so_far(out: &Path) -> usize {
    if out.exists() { whole_records(out).0.len() } else { 0 }
}

#[test]
fn dev_null_and_a_fifo_take_every_record_unsynced_and_refuse_a_resume() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    // Over 1,000 records: the default --fsync interval syncs after the 1,000th, and a sync of a
    // device or a pipe fails (EINVAL).
    let input = input(dir.path(), 2_500, |i| s.url(&format!("/json?id={i}")));
    for extra in [&[][..], &["--fsync", "always"], &["--overwrite"]] {
        let run = outofsync().args(["fetch", "-c", "32", "-o", "/dev/null"]).args(extra).arg(&input).output();
        let run = run.unwrap();
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(0), "{extra:?}: {err}");
        assert!(err.contains("2500 requests in"), "{extra:?}: {err}");
    }

    let fifo = dir.path().join("records.fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path and nothing else.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let run = outofsync().args(["fetch", "-q", "-c", "32", "-o"]).arg(&fifo).arg(&input).output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let read = reader.join().unwrap();
    assert_eq!(read.lines().count(), 2_500, "the pipe's reader got every record");
    assert!(!dir.path().join("records.fifo.manifest.json").exists(), "no manifest beside a pipe");

    for output in ["/dev/null", fifo.to_str().unwrap()] {
        let run = outofsync().args(["fetch", "-q", "--resume", "-o", output, &input]).output().unwrap();
        assert_eq!(run.status.code(), Some(2), "{output}");
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(err.contains(&format!("cannot resume {output}: it is not a regular file")), "{err}");
        assert!(err.contains("--resume needs -o FILE"), "{err}");
    }
}

#[test]
fn an_input_touched_copied_or_grown_by_lines_at_its_end_resumes_without_being_asked() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 30, |i| s.url(&format!("/json?id={i}")));
    let out = dir.path().join("out.jsonl");
    let resume = |input: &Path| {
        let run = outofsync().args(["fetch", "--resume", "-o"]).arg(&out).arg(input).output().unwrap();
        let err = String::from_utf8_lossy(&run.stderr).into_owned();
        assert_eq!(run.status.code(), Some(0), "{err}");
        err
    };
    outofsync().args(["fetch", "-q", "-o"]).arg(&out).arg(&input).assert().code(0);

    // touch: the same bytes under a new time.
    let file = std::fs::File::options().write(true).open(&input).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(3600)).unwrap();
    assert!(resume(Path::new(&input)).contains("resuming: 30 records kept"));
    // cp (or git checkout): the same bytes in another file.
    let copy = dir.path().join("copy.txt");
    std::fs::copy(&input, &copy).unwrap();
    assert!(resume(&copy).contains("resuming: 30 records kept"));
    // Lines added at the end: the first 30 keep their indexes, the new ones are fetched.
    let more: String = (30..45).map(|i| s.url(&format!("/json?id={i}")) + "\n").collect();
    std::fs::write(&copy, std::fs::read_to_string(&input).unwrap() + &more).unwrap();
    assert!(resume(&copy).contains("15 requests in"));
    assert_exactly_once(&out, 45);
    for record in records_in(&out) {
        assert_eq!(record["json"]["id"], record["i"], "each input under its own index");
    }
}

#[test]
fn the_summary_after_a_signal_counts_the_requests_it_cancelled() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    // Ten quick ones that finish, twenty slow ones that the grace period cuts.
    let input = input(dir.path(), 30, |i| s.url(if i < 10 { "/json" } else { "/delay/5000" }));
    let (out, summary) = (dir.path().join("out.jsonl"), dir.path().join("summary.json"));
    let (out_arg, summary_arg) = (out.to_str().unwrap(), summary.to_str().unwrap());
    let args = ["fetch", "--no-progress", "-c", "30", "--grace", "200ms", "--summary-json", summary_arg];
    let child = spawn(&[&args[..], &["-o", out_arg, &input]].concat());
    let started = Instant::now();
    while records_in_so_far(&out) < 10 {
        assert!(started.elapsed() < Duration::from_secs(20), "the quick ones are recorded");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, libc::SIGINT);
    let (code, err) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("10 requests in"), "{err}");
    assert!(err.contains("cancelled: 20 requests were stopped before they ended, without a record"), "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!((&summary["total"], &summary["cancelled"]), (&10.into(), &20.into()), "{summary}");
}
