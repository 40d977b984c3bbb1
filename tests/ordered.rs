//! `--ordered`: records in input order through a bounded window, whose memory does not grow
//! with the input.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use outofsync::engine::{Order, RunOptions, Shutdown};
use outofsync::{Fetcher, RequestSpec};

use crate::support::{indexes, records_in, server};

/// `n` requests with random small delays; input 5 is slow, so the window fills behind it. The
/// others are ~1 KiB JSON bodies, so records held without bound would show in memory.
fn write_input(path: &Path, base: &str, n: u64, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let text: String = (0..n)
        .map(|i| match i {
            5 => format!("{base}/delay/1500\n"),
            _ if i % 2 == 0 => format!("{base}/delay/{}\n", rng.u32(0..=5)),
            _ => format!("{base}/json?size=1024&id={i}\n"),
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

/// Runs the binary to its end and returns its exit code and peak resident memory (KiB).
///
/// The peak is the child's own `VmHWM`, sampled until it exits. (Not `getrusage`/`wait4`: Linux
/// carries the high-water mark of the address space a child was spawned from across `exec`, so
/// those report the test process's memory, not the child's.)
fn run_measured(args: &[&str]) -> (i32, u64) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("outofsync"))
        .args(args)
        .env_clear()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let start = Instant::now();
    let mut peak = 0;
    let code = loop {
        // Read before reaping: once reaped the pid (and its status file) may be another's.
        if let Some(hwm) = std::fs::read_to_string(&status).ok().as_deref().and_then(vm_hwm_kib) {
            peak = peak.max(hwm);
        }
        if let Some(exit) = child.try_wait().unwrap() {
            break exit.code().expect("the child exited");
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the child did not end");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(peak > 0, "the child's memory was read at least once");
    (code, peak)
}

fn vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn ordered_output_is_in_input_order_and_its_peak_memory_does_not_grow_with_the_input() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let mut peaks = Vec::new();
    for (n, seed) in [(10_000u64, 1), (40_000, 2)] {
        let input = dir.path().join(format!("in-{n}.txt"));
        write_input(&input, &s.base_url(), n, seed);
        let out = dir.path().join(format!("out-{n}.jsonl"));
        let (code, peak_kib) = run_measured(&[
            "fetch",
            "-q",
            "-c",
            "64",
            "--ordered",
            "--window",
            "256",
            "-o",
            out.to_str().unwrap(),
            input.to_str().unwrap(),
        ]);
        assert_eq!(code, 0);
        let records = records_in(&out);
        assert_eq!(indexes(&records), (0..n).collect::<Vec<_>>(), "input order, every input once");
        assert!(records.iter().all(|r| r["ok"] == true));
        peaks.push(peak_kib);
    }
    let (small, large) = (peaks[0] as f64, peaks[1] as f64);
    assert!(large <= small * 1.5, "peak RSS {small} KiB for 10,000 inputs, {large} KiB for 40,000: it grows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_orders_numbered_inputs_and_a_cancelled_run_ends_at_the_first_gap() {
    let s = server();
    let fetcher = Fetcher::builder().concurrency(16).build().unwrap();
    let base = s.base_url();
    let url = move |i: u64| RequestSpec::get(&format!("{base}/delay/{}", (i * 7) % 20)).unwrap();
    // Numbered by the caller, with gaps: a resume leaves out what is done and keeps each `i`.
    let inputs = futures_util::stream::iter((0..300u64).filter(|i| i % 3 != 0).map(move |i| (i, url(i))));
    let options =
        RunOptions { order: Order::Input { window: 32 }, shutdown: Shutdown::new(), ..RunOptions::default() };
    let seen: Vec<u64> = fetcher.fetch_indexed(inputs, options).map(|r| r.i).collect().await;
    assert_eq!(seen, (0..300u64).filter(|i| i % 3 != 0).collect::<Vec<_>>());

    // Cancelled while a slow request holds the window: nothing after it is delivered.
    let base = s.base_url();
    let slow =
        move |i: u64| RequestSpec::get(&format!("{base}/delay/{}", if i == 3 { 5000 } else { 1 })).unwrap();
    let shutdown = Shutdown::new();
    let options =
        RunOptions { order: Order::Input { window: 8 }, shutdown: shutdown.clone(), ..RunOptions::default() };
    let records =
        fetcher.fetch_indexed(futures_util::stream::iter((0..100u64).map(move |i| (i, slow(i)))), options);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
    });
    let seen: Vec<u64> = records.map(|r| r.i).collect().await;
    assert_eq!(seen, [0, 1, 2], "the records before the cancelled request, and no other");
}
