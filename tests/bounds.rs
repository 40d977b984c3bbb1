//! Resource bounds, measured in a process of their own: peak memory while refusing decompression
//! bombs, and file descriptors across thousands of failing requests.
//!
//! Why a separate test target with `harness = false`: `/proc/self` belongs to the whole process,
//! and the default harness runs the tests of a binary on parallel threads, so a descriptor count or
//! a peak RSS taken there would include whatever the other tests happen to be doing. Here `main`
//! runs each check alone, one after another, and nothing else runs in the process. (A filter given
//! to `cargo test` selects checks by name, as with the default harness.)

// Each test target uses only part of the shared support.
#[allow(unused_imports)]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use outofsync::{ErrorKind, Fetcher, Record, RequestSpec};

use support::hostile::Hostile;

/// A check: panics if the bound does not hold, else says what it measured.
type Check = fn(&tokio::runtime::Runtime) -> String;

fn main() {
    let checks: [(&str, Check); 2] = [
        // Memory first: the hostile server builds its bombs in memory when it starts.
        ("bombs_are_refused_in_bounded_memory", bombs_are_refused_in_bounded_memory),
        ("failing_requests_leave_no_descriptor_behind", failing_requests_leave_no_descriptor_behind),
    ];
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for (name, check) in checks {
        if filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())) {
            let started = Instant::now();
            let measured = check(&runtime);
            println!("test {name} ... ok ({:.1?}): {measured}", started.elapsed());
        }
    }
}

/// Open file descriptors of this process.
fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc is mounted").count()
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("{field} in status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn fetch_all(fetcher: &Fetcher, urls: Vec<String>) -> Vec<Record> {
    let specs = urls.into_iter().map(|u| RequestSpec::get(&u).unwrap());
    fetcher.fetch_all(futures_util::stream::iter(specs)).collect().await
}

/// Four bombs of 1 to 4 GiB decoded, fetched at once with a 4 MiB limit: each is refused as soon
/// as its output crosses the limit, so the process grows by a few limits, not by gigabytes.
/// (Chained codings are left to the hostile tests: compressing the output of a compressor is slow
/// work for the built-in server, which would make this test measure the server.)
fn bombs_are_refused_in_bounded_memory(runtime: &tokio::runtime::Runtime) -> String {
    let server = support::server();
    let limit = 4 << 20;
    let fetcher = Fetcher::builder().max_body(limit).retries(0).build().unwrap();
    let bombs = [("gzip", 4u64 << 30), ("deflate", 4 << 30), ("zstd", 4 << 30), ("br", 1 << 30)]
        .map(|(coding, size)| server.url(&format!("/bomb?encoding={coding}&size={size}")));
    let before = status_kib("VmRSS");
    let records = runtime.block_on(fetch_all(&fetcher, bombs.to_vec()));
    let grown = status_kib("VmHWM").saturating_sub(before);
    for r in &records {
        assert_eq!(r.error_kind(), Some(ErrorKind::TooLarge), "{}", r.to_json_line());
        assert!(r.error.as_ref().unwrap().message.contains("once decompressed"));
    }
    assert_eq!(records.len(), 4);
    // Four buffers at the limit, decoder windows, and the allocator's slack: well under 64 MiB.
    assert!(grown < 64 << 10, "the peak RSS grew by {grown} KiB while refusing 13 GiB of bombs");
    format!("peak RSS {grown} KiB over the {before} KiB before")
}

/// 2,000 requests that fail in eight different ways, 64 at a time: the process never holds more
/// descriptors than its concurrency explains, and once the fetcher is dropped it holds exactly
/// those it held before.
fn failing_requests_leave_no_descriptor_behind(runtime: &tokio::runtime::Runtime) -> String {
    let (hostile, server) = (Hostile::start(), support::server());
    let failures: [(String, ErrorKind); 8] = [
        ("http://127.0.0.1:1/refused".to_owned(), ErrorKind::Connect),
        (server.url("/status/503"), ErrorKind::HttpStatus),
        (hostile.url("/short"), ErrorKind::Io),
        (hostile.url("/idle"), ErrorKind::Timeout),
        (hostile.url("/flood"), ErrorKind::TooLarge),
        (hostile.url("/bomb"), ErrorKind::TooLarge),
        (hostile.url("/heat"), ErrorKind::Decode),
        (hostile.url("/loop-a"), ErrorKind::Redirect),
    ];
    let concurrency = 64;
    let fetcher = || {
        Fetcher::builder()
            .concurrency(concurrency)
            .retries(0)
            .max_body(1 << 20)
            .read_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    };
    // A first round lets everything made once per process exist before the count.
    let warm_up = failures.iter().map(|(url, _)| url.clone()).collect();
    drop(runtime.block_on(fetch_all(&fetcher(), warm_up)));
    let baseline = settle(runtime, None);

    let peak = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(descriptors(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let fetcher = fetcher();
    let urls: Vec<String> = (0..2000).map(|n| failures[n % failures.len()].0.clone()).collect();
    let records = runtime.block_on(fetch_all(&fetcher, urls));
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(records.len(), 2000);
    for r in &records {
        let expected = failures[r.i as usize % failures.len()].1;
        assert_eq!(r.error_kind(), Some(expected), "{}", r.to_json_line());
    }
    // Each request in flight is at most a client and a server socket here (both ends live in
    // this process), and the pool keeps at most one idle connection per finished request slot.
    let peak = peak.load(Ordering::Relaxed);
    assert!(peak <= baseline + 4 * concurrency, "{peak} descriptors open at the peak, {baseline} before");

    drop(fetcher);
    let after = settle(runtime, Some(baseline));
    assert_eq!(after, baseline, "descriptors before and after 2,000 failed requests");
    drop((hostile, server));
    format!("{baseline} descriptors before, {peak} at the peak, {after} after")
}

/// The descriptor count once closing connections have had their moment: the count when it reaches
/// `target`, or when it has not changed for half a second; at most 10 s.
fn settle(runtime: &tokio::runtime::Runtime, target: Option<usize>) -> usize {
    let give_up = Instant::now() + Duration::from_secs(10);
    let (mut last, mut since) = (descriptors(), Instant::now());
    loop {
        // Closing happens on the runtime's workers and the servers' threads; let them run.
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
        let now = descriptors();
        if Some(now) == target || Instant::now() > give_up {
            return now;
        }
        if now != last {
            (last, since) = (now, Instant::now());
        } else if target.is_none() && since.elapsed() > Duration::from_millis(500) {
            return now;
        }
    }
}
