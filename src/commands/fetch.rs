//! `outofsync fetch`: the command line becomes a [`Fetcher`], a [`Job`] and a run.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue, USER_AGENT};
use outofsync::Fetcher;
use outofsync::engine::{
    Config, FetcherBuilder, HttpVersion, JqFilter, KeepHeaders, Paginate, Proxies, Shutdown,
};
use outofsync::output::{Destination, Fsync, ResumeOptions, Resumed, SentLog, Start};
use outofsync::pipeline::{self, Job};
use outofsync::request::{LineDefaults, RowFormat, RowTemplates, Rows, Source, parse_header_line};
use outofsync::stats::plural;

use super::signals::Signals;
use crate::cli::{FetchArgs, InputFormat};

pub fn run(args: FetchArgs) -> anyhow::Result<ExitCode> {
    let output = destination(args.output.as_deref());
    let summary_json = match &args.summary_json {
        Some(path) => Some(super::SummaryJson::check(path, output == Destination::Stdout)?),
        None => None,
    };
    let concurrency = super::fit_open_files(args.concurrency, super::raise_open_files_limit(), args.quiet);
    let mut fetcher = fetcher(&args)?.concurrency(concurrency);
    let mut job = job(&args, output.clone())?;
    if job.sources.contains(&Source::Stdin) && std::io::stdin().is_terminal() {
        // Nobody types requests on purpose; without a word, a forgotten INPUT looks like a hang.
        eprintln!("outofsync: reading requests from stdin (the terminal), one per line; Ctrl-D ends them");
    }
    if args.at_most_once {
        let log = SentLog::new(args.fsync != Fsync::Never);
        fetcher = fetcher.before_unsafe_send(log.hook());
        job.at_most_once = Some(log);
    }
    if args.insecure {
        eprintln!(
            "outofsync: WARNING: --insecure: TLS certificates are NOT verified; \
             anyone on the network path can read and change this traffic"
        );
    }
    // Built before the run starts, so that a setting the library refuses is a usage error.
    let fetcher = fetcher.build()?;
    let runtime = super::runtime(args.threads.into())?;
    let (quiet, grace, progress) = (args.quiet, args.grace.0, shows_progress(&args));
    let metrics =
        args.metrics.map(|addr| (addr, std::sync::Arc::new(outofsync::metrics::Metrics::default())));
    job.metrics = metrics.as_ref().map(|(_, m)| m.clone());
    // The run is spawned onto the runtime rather than driven by `block_on` on this thread: its
    // aggregator then lives on a worker, and handing it each record is not a cross-thread
    // wake-up of the main thread.
    let result = runtime.block_on(async move {
        tokio::spawn(async move {
            if let Some((addr, metrics)) = metrics {
                crate::metrics::serve(addr, metrics).await?;
            }
            let run = pipeline::Run::open(&fetcher, job).await?;
            if let (Some(resumed), false) = (run.resumed(), quiet) {
                eprintln!("outofsync: {}", describe_resume(resumed));
            }
            let shutdown = Shutdown::new();
            let signals = Signals::watch(shutdown.clone(), grace, quiet)?;
            let mut bar = crate::progress::Progress::default();
            let watch: Option<&mut dyn outofsync::pipeline::Watch> = progress.then_some(&mut bar);
            let outcome = run.run(&shutdown, watch).await?;
            anyhow::Ok((outcome, signals))
        })
        .await?
    });
    // Do not wait for helpers still running (the thread counting a huge input, say).
    runtime.shutdown_background();
    let (outcome, signals) = result?;
    super::report(&outcome.summary, args.quiet, summary_json.as_ref())?;
    if let Some(code) = signals.exit_code() {
        if !args.quiet && output != Destination::Stdout {
            eprintln!(
                "outofsync: stopped before the end of the input; run again with --resume to fetch the rest"
            );
        }
        return Ok(code);
    }
    Ok(if outcome.summary.incomplete() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Where `-o` sends records. `-` is stdout, as in curl; so is `/dev/stdout`, which would otherwise
/// be taken for the file it points at when stdout is redirected to one, and be locked, read back
/// and given a manifest (`/dev/stdout.manifest.json`) as if it were an output of its own.
fn destination(output: Option<&Path>) -> Destination {
    match output {
        Some(path) if path != Path::new("-") && path != Path::new("/dev/stdout") => {
            Destination::File(path.to_owned())
        }
        _ => Destination::Stdout,
    }
}

pub(crate) fn job(args: &FetchArgs, output: Destination) -> anyhow::Result<Job> {
    let sources = if args.inputs.is_empty() {
        vec![Source::Stdin]
    } else {
        args.inputs.iter().map(|a| Source::from_arg(a)).collect()
    };
    let start = if args.resume {
        Start::Resume(ResumeOptions {
            retry_failed: args.retry_failed,
            assume_same_input: args.assume_same_input,
        })
    } else if args.overwrite {
        Start::Overwrite
    } else {
        Start::New
    };
    let window = args.window.map_or(args.concurrency.max(1).saturating_mul(4), |w| w as usize);
    Ok(Job {
        defaults: line_defaults(args)?,
        count_total: shows_progress(args),
        start,
        fsync: args.fsync,
        ordered: args.ordered.then_some(window),
        shard: args.shard,
        ..Job::new(sources, output)
    })
}

fn describe_resume(resumed: &Resumed) -> String {
    let mut text = format!("resuming: {} kept", plural(resumed.kept, "record", "records"));
    match (resumed.kept, resumed.failed_kept) {
        (_, 0) => {}
        (1, _) => text += " (it failed; --retry-failed fetches it again)",
        (_, n) => text += &format!(" ({n} of them failed; --retry-failed fetches those again)"),
    }
    if resumed.failed_removed > 0 {
        let removed = plural(resumed.failed_removed, "failed record", "failed records");
        text += &format!(", {removed} removed to be fetched again");
    }
    if resumed.walks_partial > 0 {
        let walks = plural(resumed.walks_partial, "paginated walk", "paginated walks");
        text += &format!(", {walks} to go on from the next page");
    }
    if resumed.walks_cut > 0 {
        let walks = plural(resumed.walks_cut, "paginated walk", "paginated walks");
        text += &format!(", {walks} left at --max-pages (a larger --max-pages goes on)");
    }
    if resumed.torn_bytes > 0 {
        text += &format!(", a torn last line of {} cut", plural(resumed.torn_bytes, "byte", "bytes"));
    }
    text + "; fetching the rest"
}

/// The fetcher the flags describe; the library checks the settings as it builds it.
pub(crate) fn fetcher(args: &FetchArgs) -> anyhow::Result<FetcherBuilder> {
    let http = if args.http1_only {
        HttpVersion::Http1Only
    } else if args.http2_prior_knowledge {
        HttpVersion::Http2PriorKnowledge
    } else {
        HttpVersion::Auto
    };
    let mut builder = Fetcher::builder()
        .concurrency(args.concurrency)
        .connect_timeout(args.connect_timeout.0)
        .timeout(args.timeout.0)
        .read_timeout(args.read_timeout.0)
        .deadline(args.deadline.0)
        .retries(args.retries)
        .backoff(args.backoff.0)
        .max_backoff(args.max_backoff.0)
        .max_retry_after(args.max_retry_after.0)
        .retry_non_idempotent(args.retry_non_idempotent)
        .max_redirects(args.max_redirects)
        .https_only(args.https_only)
        .max_body(args.max_body.0)
        .body(args.body)
        .danger_accept_invalid_certs(args.insecure)
        .http(http)
        .ok_status(args.ok_status.clone())
        .max_pages(args.max_pages)
        .keep_headers(if args.include {
            KeepHeaders::All
        } else if args.keep_headers.is_empty() {
            KeepHeaders::None
        } else {
            KeepHeaders::Only(args.keep_headers.clone())
        })
        .headers(headers(args)?);
    if let Some(n) = args.per_host {
        builder = builder.per_host(n);
    }
    if let Some(rate) = args.rate {
        builder = builder.rate(rate);
    }
    if let Some(rate) = args.global_rate {
        builder = builder.global_rate(rate);
    }
    for resolve in &args.resolve {
        builder = builder.resolve(resolve.clone());
    }
    if let Some(path) = &args.cacert {
        builder = builder.ca_file(path);
    }
    builder = builder.proxies(match args.proxy.as_deref() {
        Some("") => Proxies::none(),
        Some(url) => Proxies::all(url, args.noproxy.as_deref())?,
        None => Proxies::from_env(args.noproxy.as_deref()),
    });
    if let Some(program) = &args.jq {
        builder = builder.filter(JqFilter::compile(program)?);
    }
    if let Some(how) = &args.paginate {
        let paginate = how.parse::<Paginate>().map_err(anyhow::Error::msg)?;
        if let (Paginate::Link, Some(name)) = (&paginate, &args.page_param) {
            bail!(
                "--page-param {name} sets the value that --paginate json:PATH finds; --paginate link \
                 follows the Link header's URL as it is, so there is nothing to set"
            );
        }
        builder = builder.paginate(paginate.with_param(args.page_param.clone()));
    }
    super::auth::configure(builder, &args.auth, args.user.as_deref(), &args.headers)
}

/// The headers of every request: the library's defaults, changed by the flags.
fn headers(args: &FetchArgs) -> anyhow::Result<http::HeaderMap> {
    let mut headers = Config::default().headers;
    if args.json.is_some() {
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    }
    if let Some(agent) = &args.user_agent {
        let value = HeaderValue::from_str(agent).context("--user-agent is not a valid header value")?;
        headers.insert(USER_AGENT, value);
    }
    for header in &args.headers {
        // curl's "Name:" (nothing after the colon) removes a header the tool would send.
        if let Some(name) = header.strip_suffix(':').filter(|n| !n.contains(':')) {
            headers.remove(name.trim());
            continue;
        }
        let (name, value) = parse_header_line(header).map_err(|e| anyhow::anyhow!("-H: {e}"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

fn line_defaults(args: &FetchArgs) -> anyhow::Result<LineDefaults> {
    let mut defaults =
        LineDefaults { method: args.method.clone(), no_globs: args.globoff, ..Default::default() };
    defaults.rows = rows(args)?;
    if let Some(data) = &args.data {
        defaults.body = Some(match data.strip_prefix('@') {
            Some(path) => {
                Bytes::from(std::fs::read(path).with_context(|| format!("cannot read -d @{path}"))?)
            }
            None => Bytes::from(data.clone()),
        });
    }
    if let Some(json) = &args.json {
        serde_json::from_str::<serde::de::IgnoredAny>(json).context("--json is not valid JSON")?;
        defaults.body = Some(Bytes::from(json.clone()));
        defaults.body_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(defaults)
}

/// With `--url-template`, input lines are data rows that fill the templates.
fn rows(args: &FetchArgs) -> anyhow::Result<Option<Rows>> {
    let Some(url) = &args.url_template else {
        if matches!(args.input_format, Some(InputFormat::Jsonl | InputFormat::Csv)) {
            bail!("--input-format jsonl and csv read data rows: they need --url-template");
        }
        return Ok(None);
    };
    let format = match args.input_format {
        None | Some(InputFormat::Jsonl) => RowFormat::Jsonl,
        Some(InputFormat::Csv) => RowFormat::Csv,
        Some(InputFormat::Lines) => {
            bail!("--url-template fills templates from data rows: use --input-format jsonl or csv")
        }
    };
    if let Some(url) = args.inputs.iter().find(|i| i.contains("://")) {
        bail!("{url} is a URL; with --url-template, INPUT is files of rows (or - for stdin)");
    }
    let body = match (&args.body_template, &args.json_template) {
        (Some(text), _) => Some((text.as_str(), false)),
        (None, Some(json)) => Some((json.as_str(), true)),
        (None, None) => None,
    };
    let templates = RowTemplates::new(url, &args.header_templates, body).map_err(anyhow::Error::msg)?;
    Ok(Some(Rows { format, templates: std::sync::Arc::new(templates) }))
}

/// Whether a progress bar is drawn: on a terminal, unless asked not to.
fn shows_progress(args: &FetchArgs) -> bool {
    !args.quiet && !args.no_progress && std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resume_line_agrees_with_its_counts() {
        let one = Resumed { kept: 1, failed_kept: 1, torn_bytes: 1, ..Resumed::default() };
        assert_eq!(
            describe_resume(&one),
            "resuming: 1 record kept (it failed; --retry-failed fetches it again), a torn last line of \
             1 byte cut; fetching the rest"
        );
        let many = Resumed { kept: 3, failed_kept: 2, walks_partial: 2, ..Resumed::default() };
        let text = describe_resume(&many);
        assert!(text.starts_with("resuming: 3 records kept (2 of them failed;"), "{text}");
        assert!(text.contains(", 2 paginated walks to go on from the next page"), "{text}");
    }
}
