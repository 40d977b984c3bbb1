//! The lab: `outofsync lab --quick` run once by the real binary (server and workers in processes of
//! their own), its results checked against physics; and the lab's blocking client checked against
//! the engine, record for record.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;
use outofsync::{ErrorKind, Fetcher, Record, RequestSpec};
use outofsync_lab::engines::{BlockingClient, EngineJob};
use outofsync_lab::{CellResult, EngineKind, LabReport, WorkloadKind, html};

use crate::support::{outofsync, server};

/// One `lab --quick` run, shared by the tests below (the first to ask runs it, the others wait).
struct Run {
    report: LabReport,
    stdout: String,
    html: String,
    _dir: tempfile::TempDir,
}

fn quick() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (json, page): (PathBuf, PathBuf) = (dir.path().join("lab.json"), dir.path().join("lab.html"));
        let output = outofsync()
            .args(["lab", "--quick", "--quiet", "--json"])
            .arg(&json)
            .arg("--html")
            .arg(&page)
            // A debug build on two busy cores: generous, still bounded.
            .timeout(Duration::from_secs(300))
            .output()
            .unwrap();
        assert!(output.status.success(), "lab --quick failed: {}", String::from_utf8_lossy(&output.stderr));
        Run {
            report: serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            html: std::fs::read_to_string(&page).unwrap(),
            _dir: dir,
        }
    })
}

fn cells(report: &LabReport, engine: EngineKind) -> Vec<&CellResult> {
    report.cells.iter().filter(|c| c.measurement.engine == engine).collect()
}

#[test]
fn quick_runs_every_engine_on_every_workload() {
    let report = &quick().report;
    for engine in EngineKind::ALL {
        for workload in WorkloadKind::ALL {
            assert!(!report.series(engine, workload).is_empty(), "{engine:?} did not run {workload:?}");
        }
    }
    let io_points: Vec<usize> = report
        .series(EngineKind::Async1, WorkloadKind::Io)
        .iter()
        .map(|c| c.measurement.concurrency)
        .collect();
    assert_eq!(io_points, [10, 100, 1000]);
}

#[test]
fn every_engine_produces_one_record_per_request_and_the_same_records() {
    let report = &quick().report;
    let mut groups: BTreeMap<(WorkloadKind, usize), Vec<&CellResult>> = BTreeMap::new();
    for cell in &report.cells {
        let m = &cell.measurement;
        assert_eq!(m.totals.records, m.requests, "{:?} {:?} lost or doubled records", m.engine, m.workload);
        assert_eq!(cell.server_requests, m.totals.attempts, "every send counted in a record: {:?}", m.engine);
        assert!(m.totals.attempts > m.requests || m.totals.failures.is_empty(), "failures are retried");
        groups.entry((m.workload, m.concurrency)).or_default().push(cell);
    }
    for ((workload, concurrency), group) in groups {
        assert_eq!(group.len(), EngineKind::ALL.len());
        let first = &group[0].measurement.totals;
        for cell in &group[1..] {
            let t = &cell.measurement.totals;
            let what = format!("{:?} on {workload:?} × {concurrency}", cell.measurement.engine);
            assert_eq!(t.records, first.records, "{what}: record count");
            assert_eq!(t.records_digest, first.records_digest, "{what}: records differ from async-1's");
            assert_eq!(t.work_digest, first.work_digest, "{what}: work differs from async-1's");
            assert_eq!(t.failures, first.failures, "{what}: failures");
        }
    }
}

#[test]
fn mixed_fails_exactly_the_503s_in_every_engine() {
    let report = &quick().report;
    for cell in report.cells.iter().filter(|c| c.measurement.workload == WorkloadKind::Mixed) {
        let t = &cell.measurement.totals;
        let expected = cell.measurement.requests / 100;
        assert_eq!(t.failures.get("http_status"), Some(&expected), "{:?}", cell.measurement.engine);
        assert_eq!(t.ok, t.records - expected);
    }
}

#[test]
fn threads_uses_at_least_one_os_thread_per_request_in_flight() {
    for cell in cells(&quick().report, EngineKind::Threads) {
        let m = &cell.measurement;
        // The engine reads the OS's thread count at each new most in flight, so this holds
        // however busy the machine is (the sampler alone could miss the peak).
        if m.workload == WorkloadKind::Io {
            assert!(
                m.threads >= m.totals.in_flight,
                "{} threads for {} requests in flight (asked {})",
                m.threads,
                m.totals.in_flight,
                m.concurrency
            );
            if m.concurrency >= 100 {
                // A debug build on a busy machine may not start them all within one delay, but
                // more than a pool's worth.
                assert!(m.totals.in_flight > 64, "only {} in flight", m.totals.in_flight);
            }
        }
        assert!(m.totals.in_flight <= m.concurrency as u64);
    }
}

#[test]
fn async_1_runs_on_one_thread_and_pool_on_its_size() {
    let report = &quick().report;
    for cell in cells(report, EngineKind::Async1) {
        let m = &cell.measurement;
        assert_eq!(m.threads, 1, "async-1 on {:?} × {}", m.workload, m.concurrency);
        if m.workload == WorkloadKind::Io {
            // Usually all of them; a starved machine may end the first before it starts the
            // last, so the check is for more than half, and more than a pool's worth.
            let least = (m.concurrency / 2).min(report.plan.pool_size) as u64;
            assert!(m.totals.in_flight > least, "one thread held {} requests in flight", m.totals.in_flight);
        }
        if m.workload == WorkloadKind::Io && m.concurrency >= 100 {
            // More of them reached the server at once than the pool's 64 threads can send.
            assert!(cell.server_in_flight > report.plan.pool_size as u64, "{}", cell.server_in_flight);
        }
    }
    for cell in cells(report, EngineKind::Pool) {
        let m = &cell.measurement;
        let size = report.plan.pool_size.min(m.concurrency) as u64;
        // Its threads and the one that waits for them.
        assert_eq!(m.threads, size + 1, "pool on {:?} × {}", m.workload, m.concurrency);
        assert!(
            m.totals.in_flight <= size && cell.server_in_flight <= size,
            "no more in flight than threads"
        );
    }
    for cell in cells(report, EngineKind::Hybrid) {
        // The event loop, and the CPU pool once there is CPU work.
        assert!(cell.measurement.threads <= 1 + report.plan.cpu_threads as u64);
    }
}

#[test]
fn measurements_are_deltas_of_a_real_run() {
    for cell in &quick().report.cells {
        let m = &cell.measurement;
        let what = format!("{:?} {:?} × {}", m.engine, m.workload, m.concurrency);
        assert!(m.elapsed_s > 0.0 && m.throughput > 0.0, "{what}");
        assert!(m.usage.user_s + m.usage.system_s > 0.0, "{what}: no CPU time");
        assert!(m.rss_peak >= m.rss_start && m.rss_start > 0, "{what}");
        assert!(
            m.fds >= cell.server_in_flight,
            "{what}: a socket per request at the server: {} descriptors, {} at the server",
            m.fds,
            cell.server_in_flight
        );
        assert!(m.totals.latency_ms.p50 <= m.totals.latency_ms.p99, "{what}");
        if m.workload == WorkloadKind::Io {
            let delay = quick().report.plan.io_delay_ms as f64;
            assert!(m.totals.latency_ms.p50 >= delay, "{what}: faster than the server's delay");
        }
    }
}

#[test]
fn the_report_restates_every_row_of_the_note() {
    let stdout = &quick().stdout;
    for feature in [
        "Execution model",
        "Overhead",
        "Use cases",
        "Complexity",
        "Control flow",
        "Resource management",
        "Error handling",
    ] {
        assert!(stdout.contains(feature), "no row for {feature}:\n{stdout}");
    }
    assert!(stdout.contains("async: Single-threaded event loop"));
}

#[test]
fn the_html_has_one_svg_chart_per_figure_with_every_engine() {
    let page = &quick().html;
    let svgs: Vec<&str> = page.split("<svg").skip(1).map(|s| s.split("</svg>").next().unwrap()).collect();
    assert_eq!(svgs.len(), html::FIGURES.len(), "one SVG per figure");
    for (id, svg) in html::FIGURES.iter().zip(&svgs) {
        assert!(page.contains(&format!("<figure id=\"{id}\"><svg")), "figure {id}");
        let texts = texts(svg);
        for engine in EngineKind::ALL {
            assert!(texts.contains(&engine.name()), "{id} has no {}: {texts:?}", engine.name());
        }
    }
    // The two sweeps draw a line per engine (and the ideal); the CPU figure a bar per engine.
    for svg in &svgs[..2] {
        assert!(svg.matches("<polyline").count() >= EngineKind::ALL.len(), "a line per engine");
        assert!(texts(svg).contains(&"requests in flight"), "the x axis is labelled");
    }
    assert!(texts(svgs[0]).contains(&"requests per second"));
    assert!(texts(svgs[1]).contains(&"peak resident memory (MiB)"));
    assert!(texts(svgs[2]).contains(&"requests per second"));
    assert!(svgs[2].matches("<rect").count() > EngineKind::ALL.len(), "a bar per engine");
    assert!(!page.contains("<script") && !page.contains("src=\"http"), "self-contained");
}

#[test]
fn help_lists_lab_but_not_its_worker() {
    let help = outofsync().arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("lab ") && !help.contains("lab-worker"), "{help}");
    let lab = outofsync().args(["lab", "--help"]).output().unwrap();
    let lab = String::from_utf8(lab.stdout).unwrap();
    for words in ["async-1", "async-n", "threads", "pool", "hybrid", "--quick", "--html", "--json", "--from"]
    {
        assert!(lab.contains(words), "lab --help does not mention {words}");
    }
}

#[test]
fn from_renders_a_saved_run_without_measuring() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("saved.json");
    std::fs::write(&saved, serde_json::to_vec(&quick().report).unwrap()).unwrap();
    let page = dir.path().join("again.html");
    let run = outofsync().args(["lab", "--from"]).arg(&saved).arg("--html").arg(&page).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(
        String::from_utf8(run.stdout).unwrap(),
        quick().stdout,
        "the same report from the same numbers"
    );
    assert_eq!(std::fs::read_to_string(&page).unwrap(), quick().html);
}

/// The text of every `<text>` element of an SVG document, trimmed.
fn texts(svg: &str) -> Vec<&str> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim()))
        .collect()
}

/// The records of the blocking client and of the engine for the same requests, as JSON lines
/// with their timings zeroed.
fn both(urls: &[String]) -> Vec<(Record, Record)> {
    let config = EngineJob::client_config(4);
    let blocking = BlockingClient::new(&config);
    let blocked: Vec<Record> =
        urls.iter().enumerate().map(|(i, u)| blocking.fetch(i as u64, RequestSpec::get(u).into())).collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fetcher = Fetcher::builder().config(config).build().unwrap();
    let inputs: Vec<RequestSpec> = urls.iter().map(|u| RequestSpec::get(u).unwrap()).collect();
    let mut fetched: Vec<Record> =
        runtime.block_on(async { fetcher.fetch_all(futures_util::stream::iter(inputs)).collect().await });
    fetched.sort_by_key(|r| r.i);
    blocked.into_iter().zip(fetched).collect()
}

fn line(record: &Record) -> String {
    let mut record = record.clone();
    record.elapsed_ms = 0.0;
    for attempt in &mut record.history {
        attempt.elapsed_ms = 0.0;
    }
    record.to_json_line()
}

#[test]
fn the_blocking_client_builds_the_same_records_as_the_engine() {
    let server = server();
    let urls: Vec<String> = [
        "/json?id=3",
        "/json?size=20000&id=4",
        "/status/404",
        "/status/503",
        "/delay/20",
        "/redirect/2",
        "/bytes/16",
        "/anything?x=1",
    ]
    .iter()
    .map(|p| server.url(p))
    .collect();
    for (blocking, engine) in both(&urls) {
        assert_eq!(line(&blocking), line(&engine));
    }
}

#[test]
fn the_blocking_client_reports_failures_with_the_engines_kinds() {
    // A port that was just free: nothing listens there.
    let closed = format!("127.0.0.1:{}", crate::support::ports::lease());
    let urls = [format!("http://{closed}/json")];
    for (blocking, engine) in both(&urls) {
        assert_eq!(blocking.error_kind(), Some(ErrorKind::Connect), "{:?}", blocking.error);
        assert_eq!(engine.error_kind(), Some(ErrorKind::Connect));
        // Both drive the same request machine: a connect error is retried (twice by default).
        assert!(!blocking.ok && blocking.status.is_none() && blocking.attempts == 3, "{blocking:?}");
        assert_eq!((engine.attempts, engine.history.len()), (blocking.attempts, blocking.history.len()));
        assert_eq!((engine.http, blocking.http), (None, None), "no connection, no protocol");
    }
}
