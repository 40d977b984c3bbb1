//! Turns parsed command lines into library calls, one file per subcommand.

mod auth;
mod collect;
mod demo;
mod fetch;
mod lab;
mod serve;
mod signals;
mod status;
mod submit;
mod worker;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use outofsync::stats::Summary;

use crate::cli::{Cli, Command};

/// Runs a parsed command line; the `ExitCode` is the command's, an `Err` becomes exit code 2.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Fetch(args) => fetch::run(*args),
        Command::Lab(args) => lab::run(args),
        Command::LabWorker(args) => lab::run_worker(args),
        Command::Serve(args) => serve::run(args),
        Command::Submit(args) => submit::run(*args),
        Command::Worker(args) => worker::run(args),
        Command::Collect(args) => collect::run(args),
        Command::Status(args) => status::run(args),
    }
}

/// The runtime of the client commands: `workers` threads run the event loop (`fetch --threads`).
///
/// One is the default: one worker takes less CPU per small request than two, and is faster,
/// because two workers wake each other and share every lock and counter of the run; two pay only
/// when one core is saturated (big bodies to check as JSON). The measurements are in
/// BENCHMARKS.md, "Why the code is shaped this way".
///
/// The runtime starts its workers first, as it is built, and its blocking threads later, on demand:
/// the first `workers` threads are named `outofsync-loop`, the others `outofsync-block`, so that
/// `top -H` (and a test) can tell them apart.
fn runtime(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let started = std::sync::atomic::AtomicUsize::new(0);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name_fn(move || {
            let n = started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n < workers { "outofsync-loop" } else { "outofsync-block" }.to_owned()
        })
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

/// Raises the soft limit on open files to the hard limit, for the commands that hold a socket per
/// request in flight (10,000 in the lab, where many systems start processes at 1,024). A refusal is
/// not fatal: the command then runs with the limit it has, and says so at `-v`.
fn raise_open_files_limit() -> Option<u64> {
    // SAFETY: get/setrlimit read and write only the struct passed to them.
    let (before, after) = unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            tracing::info!("cannot read the open-file limit: {}", std::io::Error::last_os_error());
            return None;
        }
        let before = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if before < limit.rlim_max && libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            tracing::info!(
                "cannot raise the open-file limit from {before}: {}",
                std::io::Error::last_os_error()
            );
            return Some(before);
        }
        (before, limit.rlim_cur)
    };
    tracing::info!("open-file limit: {after} (was {before})");
    Some(after)
}

/// The concurrency a client command can keep: `concurrency`, or fewer when that many connections
/// cannot be open at once under the open-file `limit` — the requests beyond would fail to connect
/// (`EMFILE`) instead of waiting their turn. Says so on stderr unless `quiet`.
fn fit_open_files(concurrency: usize, limit: Option<u64>, quiet: bool) -> usize {
    // Descriptors the process holds besides its sockets: stdio, the input and output files, the
    // runtime's epoll and wake-up descriptors, with room to spare.
    const RESERVED: u64 = 32;
    let Some(limit) = limit else { return concurrency };
    if concurrency as u64 + RESERVED <= limit {
        return concurrency;
    }
    let fitted = limit.saturating_sub(RESERVED).max(1) as usize;
    if !quiet {
        eprintln!(
            "outofsync: WARNING: -c {concurrency} needs about {} open files, but this process may open \
             {limit} (ulimit -n); running with -c {fitted}. Raise the hard limit for more.",
            concurrency as u64 + RESERVED
        );
    }
    fitted
}

/// Where `--summary-json` writes: a file, or stdout for `-` (as curl reads `-`).
enum SummaryJson {
    Stdout,
    File(PathBuf),
}

impl SummaryJson {
    /// Checks `--summary-json PATH` before anything is fetched: a typo in the path must not be
    /// found out only after a long run, with the summary lost. Nothing is created here.
    ///
    /// # Errors
    /// `-` while the records go to stdout too (one stream would hold both); a directory; a
    /// directory that does not exist; a file that could not be written.
    fn check(path: &Path, records_on_stdout: bool) -> anyhow::Result<SummaryJson> {
        if path == Path::new("-") {
            if records_on_stdout {
                bail!(
                    "--summary-json - would mix the summary into the records on stdout: \
                     give -o FILE for the records, or a file for the summary"
                );
            }
            return Ok(SummaryJson::Stdout);
        }
        let shown = path.display();
        if path.is_dir() {
            bail!("--summary-json {shown}: that is a directory; name a file in it");
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            bail!("--summary-json {shown}: the directory {} does not exist", dir.display());
        }
        if path.exists() {
            // Opened to append, so that nothing of it changes before the run ends.
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .with_context(|| format!("--summary-json {shown}: cannot write it"))?;
        } else if !writable(dir) {
            bail!(
                "--summary-json {shown}: cannot create a file in {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(SummaryJson::File(path.to_owned()))
    }

    fn write(&self, summary: &Summary) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(summary).expect("a summary serialises") + "\n";
        match self {
            SummaryJson::Stdout => match std::io::stdout().lock().write_all(text.as_bytes()) {
                // `| head` is not an error, for the summary as for records.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(e).context("cannot write the summary to stdout")
                }
                _ => Ok(()),
            },
            SummaryJson::File(path) => {
                std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
            }
        }
    }
}

/// Whether this process may create files in `dir` (write and search permission).
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    // SAFETY: access(2) reads a NUL-terminated path and nothing else.
    unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// Prints the summary on stderr (unless quiet) and writes it as JSON if asked.
fn report(summary: &Summary, quiet: bool, json: Option<&SummaryJson>) -> anyhow::Result<()> {
    if !quiet {
        eprint!("{summary}");
    }
    match json {
        Some(target) => target.write(summary),
        None => Ok(()),
    }
}

/// Diagnostics go to stderr; `RUST_LOG` wins over `-v`.
pub fn init_tracing(verbose: u8) {
    // -v: a line per attempt; -vv: with the headers; -vvv: what hyper and h2 say too. Each level
    // names our own targets, so that -vv is not drowned in h2's frame-by-frame debug lines.
    let default = match verbose {
        0 => "warn",
        1 => "warn,outofsync=info",
        2 => "warn,outofsync=debug",
        _ => "info,outofsync=trace,hyper=debug,h2=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person: not into a file or a pipe, and never under NO_COLOR.
    let colour =
        std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(colour).with_writer(std::io::stderr).init();
}
