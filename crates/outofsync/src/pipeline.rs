//! A whole fetch run: open the output (a resume reads it back), read the input, fetch, write the
//! records, count, show progress. What `outofsync fetch` and `outofsync demo` both run.
//!
//! Request loop → channel → this task (the aggregator) → writer thread: the fetch tasks only
//! produce records; this one task counts them ([`Stats`] needs no lock) and batches them for the
//! writer; the progress bar only reads atomics.
//!
//! A resume keeps every `i` of the first run: the reader still numbers every input, and the
//! inputs the output already records are left out by index before anything is sent. That is
//! also what a resume assumes: the same input, in the same order (the manifest checks it).

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::{FutureExt, StreamExt, future, stream};

use crate::cursor::{Cursor, CursorError, CursorValue, Tracker};
use crate::engine::children::ResumedChildren;
use crate::engine::machine::Walk;
use crate::engine::{self, Fetcher, Order, RunOptions, Shutdown, is_idempotent};
use crate::metrics::Metrics;
use crate::output::children;
use crate::output::validators::{Committed, StoreError};
use crate::output::{
    Destination, Done, Fsync, Journal, Manifest, OpenError, Resumed, SentLog, Sink, Start, ValidatorFile,
    WriteError,
};
use crate::record::{ErrorKind, RecordError};
use crate::request::{Input, InvalidInput, LineDefaults, Reader, Source, reader};
use crate::shard::Shard;
use crate::stats::{Counters, Stats, Summary};

/// What shows a run as it goes, such as the command line's progress bar. It only reads the
/// run's counters (atomics the run bumps), so it costs the fetch loop nothing.
pub trait Watch: Send {
    /// The run has started: `counters` count its records; `total` holds the number of records
    /// expected once it is known (0 until then, and for good when it cannot be known).
    fn start(&mut self, counters: Arc<Counters>, total: Arc<AtomicU64>);
    /// The run has ended.
    fn finish(&mut self);
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Job {
    /// Where requests come from, in order.
    pub sources: Vec<Source>,
    /// What the command line says about requests their line does not describe.
    pub defaults: LineDefaults,
    /// Where records go.
    pub output: Destination,
    /// Count the inputs ahead of the run, so that a [`Watch`] can show a total (a second read
    /// of the input files).
    pub count_total: bool,
    /// What to do with an output file that already holds records.
    pub start: Start,
    /// When the output file is synced to disk.
    pub fsync: Fsync,
    /// Records in input order through a reorder window of this many requests; `None`: as each
    /// completes.
    pub ordered: Option<usize>,
    /// `--at-most-once`: the log in which the fetcher notes each non-idempotent request before
    /// sending it (its [`SentLog::hook`] must be the fetcher's `before_unsafe_send`). A resume
    /// then ends each noted input that has no record as an `io` failure instead of sending it
    /// again. Needs a file output.
    pub at_most_once: Option<Arc<SentLog>>,
    /// `--validators`: the store whose validators the fetcher's requests are sent with (it must
    /// be the fetcher's [`Config::validators`](crate::engine::Config::validators) too). A run
    /// starts its log (a resume keeps the interrupted run's), and one that completes commits it.
    pub validators: Option<Arc<ValidatorFile>>,
    /// `--cursor` and `--state`: the cursor found in each successful record, saved when the run
    /// completes (a resume counts the records already in the output too).
    pub cursor: Option<Arc<Cursor>>,
    /// More options for the manifest, by name: what a front end knows shapes the records
    /// (a job file's digest, say), so that a resume with others is refused.
    pub manifest_options: Vec<(String, String)>,
    /// `--shard K/N`: only the inputs whose index is `K` modulo `N`, under their own indexes. The
    /// manifest records the shard, so a resume must name the same one.
    pub shard: Option<Shard>,
    /// Live counters for `--metrics`, bumped as inputs start and records come.
    pub metrics: Option<Arc<Metrics>>,
}

impl Job {
    /// A job with the defaults: refuse an output that holds records, sync every second, records
    /// in completion order, no total counted.
    pub fn new(sources: Vec<Source>, output: Destination) -> Job {
        Job {
            sources,
            defaults: LineDefaults::default(),
            output,
            count_total: false,
            start: Start::New,
            fsync: Fsync::Interval,
            ordered: None,
            at_most_once: None,
            validators: None,
            cursor: None,
            manifest_options: Vec::new(),
            shard: None,
            metrics: None,
        }
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The counts of the records written by this run.
    pub summary: Summary,
    /// The reader of stdout went away before the end (not an error: `| head` does that).
    pub output_closed: bool,
    /// What a resume found in the output, if this run was one.
    pub resumed: Option<Resumed>,
    /// The run was stopped before the end of its input (a [`Shutdown`]).
    pub stopped: bool,
    /// What the commit of `--validators` did, when the run completed with a store.
    pub validators: Option<Committed>,
    /// The cursor saved by `--state`, when the run completed with one (`None`: none yet).
    pub cursor: Option<CursorValue>,
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The input could not be read.
    #[error("{0}")]
    Input(io::Error),
    /// The output cannot be used for this run (it is left as it was).
    #[error("{0}")]
    Open(OpenError),
    /// The records could not be written.
    #[error("{0}")]
    Output(WriteError),
    /// The log of `--at-most-once` cannot be used.
    #[error("--at-most-once: {0}")]
    AtMostOnce(io::Error),
    /// The store of `--validators` cannot be used.
    #[error("--validators {0}")]
    Validators(StoreError),
    /// The cursor cannot be read back or saved.
    #[error("{0}")]
    Cursor(CursorError),
}

/// Runs `job` with `fetcher` to the end of its input.
///
/// # Errors
/// As [`Run::open`] and [`Run::run`].
pub async fn run(fetcher: &Fetcher, job: Job) -> Result<Outcome, JobError> {
    Run::open(fetcher, job).await?.run(&Shutdown::new(), None).await
}

/// A run whose output is open (locked, checked, repaired) and whose input is not yet read.
pub struct Run<'a> {
    fetcher: &'a Fetcher,
    job: Job,
    sink: Sink,
    done: Done,
    resumed: Option<Resumed>,
    /// Under `--at-most-once`, the inputs an earlier run noted as sent.
    noted: HashSet<u64>,
    /// The cursor values seen, those of a resumed output's records included.
    cursor: Tracker,
    /// The children (`--then`) a resume has left to run.
    children: ResumedChildren,
}

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").field("job", &self.job).field("resumed", &self.resumed).finish_non_exhaustive()
    }
}

impl<'a> Run<'a> {
    /// Opens the output as `job.start` says; for a file, writes its manifest.
    ///
    /// # Errors
    /// An input file cannot be read, or the output cannot be used (held by another run, holds
    /// records, a resume the manifest refuses, a line that is not a record).
    pub async fn open(fetcher: &'a Fetcher, job: Job) -> Result<Run<'a>, JobError> {
        let mut noted = HashSet::new();
        let (sink, done, resumed) = match &job.output {
            Destination::Stdout => {
                if let Start::Resume(_) = job.start {
                    return Err(JobError::Open(OpenError::NotResumable { path: PathBuf::from("stdout") }));
                }
                if job.at_most_once.is_some() {
                    return Err(JobError::AtMostOnce(io::Error::other("needs an output file (-o FILE)")));
                }
                (Sink::stdout().map_err(JobError::Output)?, Done::default(), None)
            }
            Destination::File(path) => {
                let mut manifest =
                    Manifest::new(&job.sources, fetcher.config(), &job.defaults).map_err(JobError::Input)?;
                if job.at_most_once.is_some() {
                    // A resume must keep the promise the first run made, and cannot make one it did not.
                    manifest.options.insert("--at-most-once".to_owned(), "on".to_owned());
                }
                if let Some(store) = &job.validators {
                    manifest.options.insert("--validators".to_owned(), store.path().display().to_string());
                }
                if let Some(cursor) = &job.cursor {
                    // The window: a resume must fill the same {cursor} into the same requests.
                    manifest.options.insert("--cursor".to_owned(), cursor.filter().source().to_owned());
                    manifest.options.insert("--state".to_owned(), cursor.path().display().to_string());
                    manifest.options.insert("{cursor}".to_owned(), cursor.start().to_string());
                }
                if let Some(then) = &fetcher.config().then {
                    manifest.options.insert("--then".to_owned(), then.template().to_owned());
                    manifest.options.insert("--then-from".to_owned(), then.from().source().to_owned());
                }
                manifest.options.extend(job.manifest_options.iter().cloned());
                if let Some(shard) = job.shard {
                    // Another shard's resume would skip this one's inputs and fetch its own.
                    manifest.options.insert("--shard".to_owned(), shard.to_string());
                }
                let (output, start) = (path.clone(), job.start);
                // Reading a large output back takes a while: off the runtime's workers.
                let journal = tokio::task::spawn_blocking(move || Journal::open(&output, start, &manifest))
                    .await
                    .expect("opening the output does not panic")
                    .map_err(JobError::Open)?;
                if let Some(log) = &job.at_most_once {
                    if fetcher.config().before_unsafe_send.is_none() {
                        return Err(JobError::AtMostOnce(io::Error::other(
                            "the fetcher's before_unsafe_send is not the sent log's hook",
                        )));
                    }
                    let (log, path, resume) = (log.clone(), path.clone(), matches!(start, Start::Resume(_)));
                    noted = tokio::task::spawn_blocking(move || log.open(&path, resume))
                        .await
                        .expect("opening the sent log does not panic")
                        .map_err(JobError::AtMostOnce)?;
                }
                let sink = Sink::file(journal.file, &job.output, job.fsync).map_err(JobError::Output)?;
                let max_pages = fetcher.config().max_pages;
                let resumed = journal.resumed.map(|mut resumed| {
                    resumed.walks_cut =
                        journal.done.partials().filter(|p| p.page >= max_pages).count() as u64;
                    resumed.walks_partial -= resumed.walks_cut;
                    resumed
                });
                (sink, journal.done, resumed)
            }
        };
        if let Some(store) = &job.validators {
            let (store, resume) = (store.clone(), matches!(job.start, Start::Resume(_)));
            tokio::task::spawn_blocking(move || store.begin(resume))
                .await
                .expect("starting the store's log does not panic")
                .map_err(JobError::Validators)?;
        }
        let mut cursor = Tracker::default();
        if let (Some(c), Destination::File(path), Start::Resume(_)) = (&job.cursor, &job.output, job.start) {
            let (c, path) = (c.clone(), path.clone());
            cursor = tokio::task::spawn_blocking(move || {
                let mut tracker = Tracker::default();
                c.fold_output(&path, &mut tracker).map(|()| tracker)
            })
            .await
            .expect("reading the cursor back does not panic")
            .map_err(JobError::Input)?;
        }
        let mut children = ResumedChildren::default();
        if let (Some(then), Destination::File(path), Start::Resume(_)) =
            (&fetcher.config().then, &job.output, job.start)
        {
            let (then, path, max_pages) = (then.clone(), path.clone(), fetcher.config().max_pages);
            let left = tokio::task::spawn_blocking(move || children::left_to_run(&path, &then, max_pages))
                .await
                .expect("reading the children back does not panic")
                .map_err(JobError::Input)?;
            let left = left.into_iter().map(|(i, families)| {
                // Nothing of the parent itself is left: its walk ended, or stays cut.
                let parent_done = done.contains(i) || done.partial(i).is_some_and(|p| p.page >= max_pages);
                (i, engine::children::Resumed { families, parent_done })
            });
            children = ResumedChildren::new(left.collect());
        }
        Ok(Run { fetcher, job, sink, done, resumed, noted, cursor, children })
    }

    /// What a resume found in the output, if this is one.
    pub fn resumed(&self) -> Option<&Resumed> {
        self.resumed.as_ref()
    }

    /// Fetches every input the output does not record yet, until the end of the input or until
    /// `shutdown` stops it.
    ///
    /// # Errors
    /// The input cannot be read or the output cannot be written; records already written stay.
    pub async fn run(
        self,
        shutdown: &Shutdown,
        mut watch: Option<&mut dyn Watch>,
    ) -> Result<Outcome, JobError> {
        let Run { fetcher, job, mut sink, done, resumed, noted, cursor: mut tracker, children } = self;
        let started = Instant::now();
        let reader = Reader::spawn(job.sources.clone(), job.defaults.clone()).map_err(JobError::Input)?;
        let counters = Arc::new(Counters::default());
        let total = Arc::new(AtomicU64::new(0));
        if let Some(watch) = watch.as_deref_mut() {
            watch.start(counters.clone(), total.clone());
        }
        // With pagination an input makes an unknown number of records: no total, just a count.
        if job.count_total && fetcher.config().paginate.is_none() && fetcher.config().then.is_none() {
            let total = total.clone();
            let (sources, defaults, already) = (job.sources, job.defaults, done.len());
            let shard = job.shard;
            tokio::task::spawn_blocking(move || {
                if let Some(n) = reader::count_inputs(&sources, &defaults) {
                    let n = shard.map_or(n, |shard| shard.share_of(n));
                    total.store(n.saturating_sub(already), std::sync::atomic::Ordering::Relaxed);
                }
            });
        }

        let (inputs, read_status) = reader.into_parts();
        let (max_pages, paginated) = (fetcher.config().max_pages, fetcher.config().paginate.is_some());
        let mut stats = Stats::default();
        // Walks that an earlier run left at a page this --max-pages does not reach stay cut.
        for _ in done.partials().filter(|partial| partial.page >= max_pages) {
            stats.walk_cut();
        }
        // Inputs handed to the engine, against inputs whose last record came back: the difference,
        // once the run is stopped, is what was cancelled without a record.
        let (taken, mut ended) = (Arc::new(AtomicU64::new(0)), 0u64);
        let (handed, left) = (taken.clone(), children.clone());
        let shown = fetcher.clone();
        let (shard, metrics, started_metrics) = (job.shard, job.metrics.clone(), job.metrics.clone());
        let todo = inputs
            .zip(stream::iter(0u64..))
            // Every input is shown, other shards' too: credentials go to the input's first host.
            .inspect(move |(input, _)| shown.note_input(input))
            .filter(move |(_, i)| future::ready(shard.is_none_or(|shard| shard.takes(*i))))
            .filter_map(move |(input, i)| {
                let todo = still_to_do_with_children(&done, &left, i, input, max_pages);
                future::ready(todo.map(|(i, input)| (i, unsent_if_noted(&noted, paginated, i, input))))
            })
            .inspect(move |_| {
                handed.fetch_add(1, Ordering::Relaxed);
                if let Some(metrics) = &started_metrics {
                    metrics.started();
                }
            });
        let order = match job.ordered {
            Some(window) => Order::Input { window },
            None => Order::Completion,
        };
        let options = RunOptions { order, shutdown: shutdown.clone(), resumed_children: children };
        let mut records = fetcher.fetch_indexed(todo, options);
        loop {
            // Batch while records are ready; hand the batch over as soon as none is, so records
            // reach the output promptly when they come slowly. Before that, one yield: a request
            // that hands on its record wakes this task at once, ahead of the others that are ready
            // to go on (tokio runs the task woken last first), and without the yield each record
            // went to the writer thread on its own, a wake-up of that thread for every record.
            let mut next = records.next().now_or_never();
            if next.is_none() {
                tokio::task::yield_now().await;
                next = records.next().now_or_never();
            }
            let record = match next {
                Some(Some(record)) => record,
                Some(None) => break,
                None => {
                    if sink.flush().await.is_err() {
                        break;
                    }
                    match records.next().await {
                        Some(record) => record,
                        None => break,
                    }
                }
            };
            stats.observe(&record);
            if let Some(cursor) = &job.cursor {
                cursor.observe(&mut tracker, &record);
            }
            if Walk::cut_at(&record, max_pages) {
                stats.walk_cut();
            }
            let ends = Walk::ends_with(&record, max_pages);
            ended += u64::from(ends);
            counters.count(&record);
            if let Some(metrics) = &metrics {
                metrics.observe(&record);
                if ends {
                    metrics.ended();
                }
            }
            if sink.push(record).await.is_err() {
                break;
            }
        }
        // Dropping the stream stops the input, whether it ended or the writer failed.
        drop(records);
        let written = sink.finish().await;
        if let Some(watch) = watch {
            watch.finish();
        }
        if let Some(e) = read_status.take_error() {
            return Err(JobError::Input(e));
        }
        let output_closed = match written {
            Ok(()) => false,
            Err(WriteError::BrokenPipe) => true,
            Err(e) => return Err(JobError::Output(e)),
        };
        let mut summary = stats.summary(started.elapsed());
        summary.hosts = notable_hosts(fetcher);
        if shutdown.is_stopping() {
            // The stream has ended, so nothing takes inputs any more: the count is final.
            summary.cancelled = taken.load(Ordering::Relaxed).saturating_sub(ended);
        }
        // Only a run that got to the end of its input, every record written, changes the store:
        // an interrupted one leaves it as it was, and its resume commits both parts.
        let completed = !output_closed && !shutdown.is_stopping();
        let validators = match job.validators {
            Some(store) if completed => Some(
                tokio::task::spawn_blocking(move || store.commit())
                    .await
                    .expect("committing the store does not panic")
                    .map_err(JobError::Validators)?,
            ),
            _ => None,
        };
        let cursor = match job.cursor {
            Some(cursor) if completed => tokio::task::spawn_blocking(move || cursor.commit(&tracker))
                .await
                .expect("saving the cursor does not panic")
                .map_err(JobError::Cursor)?,
            _ => None,
        };
        Ok(Outcome { summary, output_closed, resumed, stopped: shutdown.is_stopping(), validators, cursor })
    }
}

/// The hosts the summary speaks of: those whose controllers did something, busiest first.
fn notable_hosts(fetcher: &Fetcher) -> Vec<crate::engine::HostReport> {
    let mut hosts: Vec<_> = fetcher.host_reports().into_iter().filter(|h| h.is_notable()).collect();
    hosts.sort_by(|a, b| b.attempts.cmp(&a.attempts).then_with(|| a.host.cmp(&b.host)));
    hosts
}

/// What is left to do of input `i`: nothing if the output records it, the rest of its walk if a
/// paginated walk was cut off (from the page after the last one recorded), else all of it.
///
/// Public for the fronts that feed inputs of their own to a resumed output (the Python module):
/// they skip what a [`Journal`] records exactly as a run of `outofsync fetch` does.
pub fn still_to_do(done: &Done, i: u64, input: Input, max_pages: u32) -> Option<(u64, Input)> {
    still_to_do_with_children(done, &ResumedChildren::default(), i, input, max_pages)
}

/// [`still_to_do`], when records have children (`--then`): an input whose own records are all
/// there but whose children are not is still handed on, and the engine runs only its children.
fn still_to_do_with_children(
    done: &Done,
    children: &ResumedChildren,
    i: u64,
    input: Input,
    max_pages: u32,
) -> Option<(u64, Input)> {
    if done.contains(i) {
        return children.contains(i).then_some((i, input));
    }
    let Some(partial) = done.partial(i) else { return Some((i, input)) };
    if partial.page >= max_pages {
        return children.contains(i).then_some((i, input));
    }
    let Input::Request(mut spec) = input else { return Some((i, input)) };
    match crate::request::parse_url(&partial.url) {
        Ok(url) => {
            spec.url = url;
            Some((i, Input::Page { spec, page: partial.page }))
        }
        Err(why) => Some((i, InvalidInput::new(format!("cannot go on with the walk: {why}")).into())),
    }
}

/// Under `--at-most-once`: an input that an interrupted run noted as sent, and whose method is
/// not idempotent, ends as a failure instead of going out again.
fn unsent_if_noted(noted: &HashSet<u64>, paginated: bool, i: u64, input: Input) -> Input {
    if !noted.contains(&i) {
        return input;
    }
    let (spec, page) = match input {
        Input::Request(spec) if !is_idempotent(&spec.method) => (spec, 0),
        Input::Page { spec, page } if !is_idempotent(&spec.method) => (spec, page),
        other => return other,
    };
    let error = RecordError::new(
        ErrorKind::Io,
        "not sent again: an interrupted run may have sent it, and --at-most-once sends a \
         non-idempotent request at most once",
    );
    Input::Unsent { spec, page: paginated.then_some(page), error }
}
