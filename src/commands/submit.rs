//! `outofsync submit`: the inputs into a Redis queue, the fetch options stored with the job;
//! with `--wait`, the collector too.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{Args, CommandFactory};
use futures_util::StreamExt;
use outofsync::engine::Shutdown;
use outofsync::output::Destination;
use outofsync::request::Reader;
use outofsync_queue::submit::{self, SubmitError};
use outofsync_queue::{JobSpec, RedisQueue};

use super::signals::Signals;
use crate::cli::{Cli, FetchArgs, SubmitArgs};

/// Fetch options that are not the job's: this process's own (its output, its progress), or the
/// worker's (-c, --threads, --metrics).
const NOT_FORWARDED: &[&str] = &[
    "inputs",
    "output",
    "overwrite",
    "resume",
    "retry_failed",
    "assume_same_input",
    "summary_json",
    "no_progress",
    "quiet",
    "ordered",
    "window",
    "fsync",
    "grace",
    "at_most_once",
    "threads",
    "metrics",
    "shard",
];

pub fn run(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let fetch = &args.fetch;
    for (given, flag, why) in [
        (fetch.paginate.is_some(), "--paginate", "a job has one record per input"),
        (fetch.ordered, "--ordered", "workers finish in their own order"),
        (fetch.at_most_once, "--at-most-once", "a queue fetches at least once"),
        (
            fetch.resume,
            "--resume",
            "the collector always goes on with its output; --continue goes on submitting",
        ),
    ] {
        if given {
            bail!("{flag} does not go with submit: {why}");
        }
    }
    if fetch.output.is_some() && !args.wait {
        bail!(
            "-o names where --wait collects the records: give --wait too, or run `outofsync collect -o FILE`"
        );
    }
    // Checked here once, rather than found wrong by every worker.
    super::fetch::fetcher(fetch)?.build().context("the job's options")?;
    let job = super::fetch::job(fetch, Destination::Stdout)?;
    let spec =
        JobSpec { options: forwarded_options(), lease: args.lease, max_deliveries: args.max_deliveries };
    let runtime = super::runtime(1)?;
    let quiet = fetch.quiet;
    let output = fetch.output.clone();
    let result = runtime.block_on(async move {
        let conn =
            outofsync_queue::Connections::open(&args.queue.redis).await.context("cannot use --redis")?;
        let queue = Arc::new(RedisQueue::new(conn, &args.job)?);
        let info = submit::open(&*queue, &spec, args.continue_job)
            .await
            .map_err(anyhow::Error::new::<SubmitError>)?;
        let collector = match (&output, args.wait) {
            (Some(path), true) => {
                let shutdown = Shutdown::new();
                let signals = Signals::watch(shutdown.clone(), args.fetch.grace.0, quiet)?;
                let options = outofsync_queue::CollectOptions {
                    output: path.clone(),
                    fsync: args.fetch.fsync != outofsync::output::Fsync::Never,
                    keep: std::time::Duration::from_secs(24 * 3600),
                    shutdown,
                };
                let (queue, info) = (queue.clone(), info.clone());
                Some((
                    tokio::spawn(async move { outofsync_queue::collect(&*queue, &info, options).await }),
                    signals,
                ))
            }
            _ => None,
        };
        let reader = Reader::spawn(job.sources, job.defaults)?;
        let (inputs, read_status) = reader.into_parts();
        // A shard keeps the whole input's indexes, so that N jobs (one per shard) collect into
        // outputs that concatenate into one record per input.
        let shard = args.fetch.shard;
        let inputs = inputs
            .zip(futures_util::stream::iter(0u64..))
            .map(|(input, i)| (i, input))
            .filter(move |(i, _)| std::future::ready(shard.is_none_or(|s| s.takes(*i))));
        let submitted =
            submit::send(&*queue, &info, inputs).await.map_err(anyhow::Error::new::<SubmitError>)?;
        if let Some(e) = read_status.take_error() {
            return Err(anyhow::Error::new(e).context("the input"));
        }
        if !quiet {
            let again = if submitted.added < submitted.total { " (the rest were there already)" } else { "" };
            let trips = queue.connections().round_trips.load(std::sync::atomic::Ordering::Relaxed);
            eprintln!(
                "outofsync: job {}: {} inputs submitted{again} in {trips} Redis round trips; start workers \
                 with `outofsync worker --redis URL --job {}`",
                args.job, submitted.total, args.job
            );
        }
        match collector {
            None => anyhow::Ok(ExitCode::SUCCESS),
            Some((task, signals)) => {
                let collected = task.await??;
                super::collect::report(&collected, quiet);
                Ok(super::collect::exit_code(&collected, &signals))
            }
        }
    });
    runtime.shutdown_background();
    result
}

/// The fetch options given on this command line, as `--name=value` words a worker parses again:
/// every flag of `fetch` stays the job's without a list here to keep in step with it.
fn forwarded_options() -> Vec<String> {
    let command = Cli::command();
    let Ok(matches) = command.try_get_matches_from(std::env::args_os()) else { return Vec::new() };
    let Some(("submit", matches)) = matches.subcommand() else { return Vec::new() };
    let fetch = FetchArgs::augment_args(clap::Command::new("fetch"));
    let mut words = Vec::new();
    for arg in fetch.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_positional()
            || NOT_FORWARDED.contains(&id)
            || matches.value_source(id) != Some(ValueSource::CommandLine)
        {
            continue;
        }
        let Some(long) = arg.get_long() else { continue };
        if arg.get_action().takes_values() {
            for value in matches.get_raw(id).into_iter().flatten() {
                words.push(format!("--{long}={}", value.to_string_lossy()));
            }
        } else {
            words.push(format!("--{long}"));
        }
    }
    words
}

/// The fetch options a job was submitted with, parsed again as `fetch` parses them.
pub(crate) fn job_options(words: &[String]) -> anyhow::Result<FetchArgs> {
    #[derive(clap::Parser)]
    struct JobOptions {
        #[command(flatten)]
        fetch: FetchArgs,
    }
    let parsed = <JobOptions as clap::Parser>::try_parse_from(
        std::iter::once("job".to_owned()).chain(words.iter().cloned()),
    )
    .map_err(|e| anyhow::anyhow!("the job's options do not parse: {e}"))?;
    Ok(parsed.fetch)
}
