//! `outofsync demo`: the whole system on the embedded default, in one command.
//!
//! Starts the built-in API on a free port, writes 10,000 requests of a realistic mix (fast JSON,
//! slow endpoints, flaky ones that pass on retry, server errors, missing pages, redirects,
//! compressed bodies and two malformed lines), fetches them with progress, and checks the promise:
//! exactly one record per input.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::time::Duration;

use outofsync::engine::Fetcher;
use outofsync::output::{Destination, Start};
use outofsync::pipeline::{self, Job, Outcome};
use outofsync::request::Source;
use outofsync_server::Server;

/// Requests in the demo.
pub const REQUESTS: u64 = 10_000;

/// What the demo did.
pub struct Demo {
    /// The run's outcome.
    pub outcome: Outcome,
    /// The input file it wrote.
    pub requests: PathBuf,
    /// The records file it wrote.
    pub records: PathBuf,
    /// Records read back from the file.
    pub records_found: u64,
    /// Distinct `i` among them.
    pub distinct: u64,
}

impl Demo {
    /// Whether the file holds exactly one record per input, `i` covering 0..REQUESTS.
    pub fn promise_kept(&self) -> bool {
        self.records_found == REQUESTS && self.distinct == REQUESTS
    }
}

/// Writes the demo input into `dir` and runs it; `progress` draws a bar.
///
/// # Errors
/// The directory or its files cannot be written, or the server cannot start.
pub async fn run(dir: &Path, progress: bool) -> anyhow::Result<Demo> {
    std::fs::create_dir_all(dir)?;
    let server = Server::start()?;
    let requests = dir.join("requests.txt");
    let records = dir.join("records.jsonl");
    std::fs::write(&requests, mix(&server.base_url()))?;

    // Fast retries so the flaky part of the show does not dominate it.
    let fetcher = Fetcher::builder().backoff(Duration::from_millis(20)).build()?;
    let job = Job {
        count_total: progress,
        // A fresh file each time: the demo is a show, not a run to resume.
        start: Start::Overwrite,
        ..Job::new(vec![Source::File(requests.clone())], Destination::File(records.clone()))
    };
    let mut bar = crate::progress::Progress::default();
    let watch: Option<&mut dyn pipeline::Watch> = if progress { Some(&mut bar) } else { None };
    let outcome =
        pipeline::Run::open(&fetcher, job).await?.run(&outofsync::engine::Shutdown::new(), watch).await?;
    drop(server);
    let (records_found, distinct) = count_records(&records)?;
    Ok(Demo { outcome, requests, records, records_found, distinct })
}

/// 10,000 request lines: the mix of a day at a real API.
fn mix(base: &str) -> String {
    let mut out = String::with_capacity(REQUESTS as usize * 48);
    out.push_str("# outofsync demo: one request per line (a URL or a JSON object); # lines are comments\n");
    for n in 0..REQUESTS {
        let line = match n % 100 {
            0..=59 => format!("{base}/json?id={n}"),
            60..=71 => format!("{base}/delay/{}", 20 + (n * 37) % 180),
            72..=79 => format!("{base}/flaky/1?key=demo-{n}"),
            80..=83 => format!("{base}/flaky?p=0.2"),
            84..=86 => format!("{base}/status/404"),
            87..=88 => format!("{base}/status/500"),
            89..=91 => format!("{base}/redirect/2"),
            92..=94 => format!(r#"{{"url":"{base}/anything","json":{{"order":{n}}},"id":"order-{n}"}}"#),
            95..=96 => format!("{base}/{}", ["gzip", "brotli", "zstd", "deflate"][(n % 4) as usize]),
            97 => format!("{base}/json?size=65536"),
            _ if n == 98 => "not a url".to_owned(),
            _ if n == 199 => format!("{base}/json\twith a tab"),
            _ => format!("{base}/items?page={}&per_page=20&total=1000", 1 + n % 50),
        };
        _ = writeln!(out, "{line}");
    }
    out
}

fn count_records(path: &Path) -> io::Result<(u64, u64)> {
    #[derive(serde::Deserialize)]
    struct Index {
        i: u64,
    }
    let mut seen = HashSet::new();
    let mut lines = 0;
    for line in io::BufReader::new(std::fs::File::open(path)?).lines() {
        let line = line?;
        lines += 1;
        if let Ok(index) = serde_json::from_str::<Index>(&line) {
            seen.insert(index.i);
        }
    }
    Ok((lines, seen.iter().filter(|&&i| i < REQUESTS).count() as u64))
}
