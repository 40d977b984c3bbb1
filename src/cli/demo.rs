//! `outofsync demo`.

use std::path::PathBuf;

use clap::Args;

/// Show the whole system working: 10,000 requests against the built-in API, every one ending as
/// exactly one record.
///
/// Starts the built-in server on a free port, writes DIR/requests.txt (a realistic mix: fast JSON,
/// slow and flaky endpoints, errors, redirects, compressed bodies and two malformed lines),
/// fetches it with progress into DIR/records.jsonl, prints the summary, and checks that the file
/// holds exactly one record per input.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the demo writes its input and records (overwritten on each run).
    #[arg(long, value_name = "DIR", default_value = "outofsync-demo")]
    pub dir: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}
