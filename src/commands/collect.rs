//! `outofsync collect`: a job's records from the queue into one output file.

use std::process::ExitCode;

use anyhow::Context;
use outofsync::engine::Shutdown;
use outofsync::output::Fsync;
use outofsync::stats::plural;
use outofsync_queue::{CollectOptions, Collected, Queue, RedisQueue};

use super::signals::Signals;
use crate::cli::CollectArgs;

pub fn run(args: CollectArgs) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime(1)?;
    let quiet = args.quiet;
    let result = runtime.block_on(async move {
        let conn =
            outofsync_queue::Connections::open(&args.queue.redis).await.context("cannot use --redis")?;
        let queue = RedisQueue::new(conn, &args.job)?;
        let job = queue.info().await?;
        let shutdown = Shutdown::new();
        let signals = Signals::watch(shutdown.clone(), std::time::Duration::ZERO, quiet)?;
        let options = CollectOptions {
            output: args.output,
            fsync: args.fsync != Fsync::Never,
            keep: args.keep,
            shutdown,
        };
        let collected = outofsync_queue::collect(&queue, &job, options).await?;
        report(&collected, quiet);
        if !quiet {
            let trips = queue.connections().round_trips.load(std::sync::atomic::Ordering::Relaxed);
            eprintln!("  {trips} Redis round trips");
        }
        anyhow::Ok(exit_code(&collected, &signals))
    });
    runtime.shutdown_background();
    result
}

/// The collector's summary on stderr.
pub(crate) fn report(collected: &Collected, quiet: bool) {
    if quiet {
        return;
    }
    let failed: u64 = collected.failures.values().sum();
    let mut line = format!(
        "{} collected ({} ok, {failed} failed)",
        plural(collected.written, "record", "records"),
        collected.ok
    );
    if collected.kept > 0 {
        line += &format!(", {} already in the output", collected.kept);
    }
    if collected.duplicates > 0 {
        line += &format!(", {} read again and dropped", collected.duplicates);
    }
    let end = match (collected.complete, collected.total) {
        (true, Some(total)) => format!("every input has its record ({total})"),
        _ => "stopped before every input had its record: run collect again to go on".to_owned(),
    };
    eprintln!("{line}; {end}");
    if !collected.failures.is_empty() {
        let kinds: Vec<String> = collected.failures.iter().map(|(k, n)| format!("{n} × {k}")).collect();
        eprintln!("  failures: {}", kinds.join(", "));
    }
}

/// As `fetch`'s: 0 every record ok, 1 some failed, 128 + N stopped by signal N.
pub(crate) fn exit_code(collected: &Collected, signals: &Signals) -> ExitCode {
    if let Some(code) = signals.exit_code() {
        return code;
    }
    if !collected.complete {
        return ExitCode::from(2);
    }
    if collected.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
