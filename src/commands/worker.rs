//! `outofsync worker`: fetches a queue's requests with the engine of `fetch`, built from the
//! options the job was submitted with.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use outofsync::Fetcher;
use outofsync::engine::{SharedLimits, Shutdown};
use outofsync::metrics::Metrics;
use outofsync_queue::queue::Remaining;
use outofsync_queue::{Connections, JobInfo, Queue, RedisLimits, RedisQueue, WorkerOptions, WorkerReport};

use super::signals::Signals;
use crate::cli::WorkerArgs;

/// How often a worker without --job looks for a job when none has work.
const IDLE_POLL: Duration = Duration::from_secs(1);

pub fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime(args.threads.into())?;
    let quiet = args.quiet;
    let result = runtime.block_on(async move {
        // On a worker of the runtime, as fetch's run, so that records are not handed across threads.
        tokio::spawn(async move {
            let conn = Connections::open(&args.queue.redis).await.context("cannot use --redis")?;
            let metrics = Arc::new(Metrics::default());
            if let Some(addr) = args.metrics {
                crate::metrics::serve(addr, metrics.clone()).await?;
            }
            let shutdown = Shutdown::new();
            let signals = Signals::watch(shutdown.clone(), args.grace, quiet)?;
            let consumer = args.name.clone().unwrap_or_else(outofsync_queue::consumer_name);
            let mut total = WorkerReport::default();
            loop {
                let job = match &args.job {
                    Some(name) => Some(RedisQueue::new(conn.clone(), name)?),
                    None => next_job(&conn).await?,
                };
                let Some(queue) = job else {
                    tokio::select! {
                        () = shutdown.input_stopped() => break,
                        () = tokio::time::sleep(IDLE_POLL) => continue,
                    }
                };
                let info = queue.info().await?;
                let report = work_on(Arc::new(queue), &info, &args, &consumer, &metrics, &shutdown).await?;
                add(&mut total, &report);
                if !quiet {
                    let trips = conn.round_trips.load(std::sync::atomic::Ordering::Relaxed);
                    eprintln!(
                        "outofsync: worker {consumer}: job {}: {} records published, {} taken over from stopped \
                         workers, {} poison, {} finished elsewhere first; {trips} Redis round trips",
                        info.name, report.published, report.reclaimed, report.poisoned, report.duplicates
                    );
                }
                if args.job.is_some() || shutdown.is_stopping() {
                    break;
                }
            }
            anyhow::Ok(signals.exit_code().unwrap_or(ExitCode::SUCCESS))
        })
        .await?
    });
    runtime.shutdown_background();
    result
}

/// The oldest job with inputs left, if any.
async fn next_job(conn: &Connections) -> anyhow::Result<Option<RedisQueue>> {
    for name in conn.jobs().await? {
        let queue = RedisQueue::new(conn.clone(), &name)?;
        match queue.remaining().await {
            Ok(Remaining { sealed, tasks }) if !sealed || tasks > 0 => return Ok(Some(queue)),
            _ => {}
        }
    }
    Ok(None)
}

/// Works on one job until it has no request left or the worker stops.
async fn work_on(
    queue: Arc<RedisQueue>,
    job: &JobInfo,
    args: &WorkerArgs,
    consumer: &str,
    metrics: &Arc<Metrics>,
    shutdown: &Shutdown,
) -> anyhow::Result<WorkerReport> {
    let options = super::submit::job_options(&job.spec.options)?;
    // Built once to check the options as fetch does, then changed where a worker differs.
    let mut config = super::fetch::fetcher(&options)?.build().context("the job's options")?.config().clone();
    let wanted = args.concurrency.map_or(config.concurrency, |c| c as usize);
    config.concurrency = super::fit_open_files(wanted, super::raise_open_files_limit(), args.quiet);
    // Per-host limits hold for the fleet: kept in Redis, not in this process.
    if config.rate.is_some() || config.per_host.is_some() {
        let limits = RedisLimits::new(
            queue.connections().cmd.clone(),
            queue.keys().clone(),
            config.rate.take(),
            config.per_host.take(),
            job.spec.lease,
            consumer,
        );
        config.shared_limits = Some(SharedLimits::new(limits));
    }
    let fetcher = Fetcher::builder().config(config).build().context("the job's options")?;
    let options = WorkerOptions {
        consumer: consumer.to_owned(),
        capacity: fetcher.admission_slots(),
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
    };
    Ok(outofsync_queue::work(queue, &fetcher, job, options).await?)
}

fn add(total: &mut WorkerReport, report: &WorkerReport) {
    total.published += report.published;
    total.duplicates += report.duplicates;
    total.reclaimed += report.reclaimed;
    total.poisoned += report.poisoned;
}
