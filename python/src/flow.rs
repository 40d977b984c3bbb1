//! [`Flow`]: one run of the engine for Python — inputs pushed in through a [`Feed`], records
//! taken out in batches, the journal written on the way.
//!
//! The records are pulled from the engine only when Python asks for the next batch, so a slow
//! consumer holds back the engine (whose own buffer is its admission slots) and nothing piles up
//! between them. A batch is every record ready at that moment, up to a budget of body bytes (at
//! least one record): hundreds of small records per wake-up of Python, a few big ones.
//!
//! With `output=`, the run is the command line's: the output is opened by the core's [`Journal`]
//! (lock, manifest, repair of a torn line), a resume skips the inputs it records
//! ([`still_to_do`]), and every batch is written by the core's [`Sink`] before Python sees it.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, Stream, StreamExt, future};
use outofsync::engine::{Order, RunOptions, Shutdown};
use outofsync::output::{Destination, Done, Journal, Manifest, Sink};
use outofsync::pipeline::still_to_do;
use outofsync::{Fetcher, Record};
use pyo3::prelude::*;
use pyo3::types::PyList;
use tokio::runtime::Handle;

use crate::hub::{Hub, Outcome};
use crate::inputs::Feed;
use crate::options::RunSettings;
use crate::record;

/// How often a blocking wait looks for Ctrl-C.
const TICK: Duration = Duration::from_millis(100);

/// One run (see the module documentation). Made by `Client.open`.
#[pyclass(frozen, weakref, module = "outofsync._outofsync")]
pub struct Flow {
    state: Arc<tokio::sync::Mutex<State>>,
    feed: Arc<Feed>,
    shutdown: Shutdown,
    runtime: Handle,
    batch_bytes: usize,
    pid: u32,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow").field("feed", &self.feed).finish_non_exhaustive()
    }
}

type Records = Pin<Box<dyn Stream<Item = Record> + Send>>;

struct State {
    /// What starts the run, until the first batch is asked for (the engine and the journal
    /// start on the runtime).
    setup: Option<(Fetcher, RunSettings)>,
    records: Option<Records>,
    journal: Option<Sink>,
    ended: bool,
}

/// What one wait for records gives.
struct Batch {
    records: Vec<Record>,
    /// The engine runs low on inputs: push more, then ask again.
    want_input: bool,
    /// The run is over: every record has been handed over (and written).
    ended: bool,
}

impl Flow {
    /// A run of `fetcher` that starts when the first batch is asked for.
    pub fn new(fetcher: Fetcher, settings: RunSettings, runtime: Handle) -> Flow {
        // Room for the engine's admission slots twice over: it pulls in bursts.
        let feed = Feed::new(fetcher.admission_slots().saturating_mul(2).max(64));
        let batch_bytes = settings.batch_bytes;
        let state = State { setup: Some((fetcher, settings)), records: None, journal: None, ended: false };
        Flow {
            state: Arc::new(tokio::sync::Mutex::new(state)),
            feed,
            shutdown: Shutdown::new(),
            runtime,
            batch_bytes,
            pid: std::process::id(),
        }
    }

    fn check_pid(&self) -> PyResult<()> {
        if self.pid == std::process::id() { Ok(()) } else { Err(crate::runtime::forked("stream")) }
    }

    /// The next batch: waits for a record (or, when `wake_on_hunger`, for the engine to run low on
    /// input; or, with a `tick`, for that long at most, then an empty batch).
    fn batch(
        &self,
        wake_on_hunger: bool,
        tick: Option<Duration>,
    ) -> impl Future<Output = Result<Batch, PyFailure>> + use<> {
        let (state, feed, shutdown, budget) =
            (self.state.clone(), self.feed.clone(), self.shutdown.clone(), self.batch_bytes);
        async move {
            let mut state = state.lock().await;
            if let Some((fetcher, settings)) = state.setup.take() {
                start(&mut state, fetcher, settings, &feed, shutdown).await?;
            }
            if state.ended {
                return Ok(Batch { records: Vec::new(), want_input: false, ended: true });
            }
            let records = state.records.as_mut().expect("started");
            let hungry = async {
                loop {
                    feed.hungry().await;
                    if wake_on_hunger && feed.room() > 0 && !feed.is_closed() {
                        return;
                    }
                }
            };
            let ticked = async {
                match tick {
                    Some(tick) => tokio::time::sleep(tick).await,
                    None => future::pending().await,
                }
            };
            // Waiting for the first record is the one place this future may be left: the
            // engine's stream loses nothing when its `next` is dropped before it is ready.
            let first = tokio::select! {
                biased;
                first = records.next() => first,
                () = hungry => return Ok(Batch { records: Vec::new(), want_input: true, ended: false }),
                () = ticked => return Ok(Batch { records: Vec::new(), want_input: false, ended: false }),
            };
            let mut batch = Vec::new();
            let mut ended = first.is_none();
            if let Some(first) = first {
                let mut bytes = record::Record::weight(&first);
                batch.push(first);
                // One yield: the requests that are about to hand over a record get to, and come
                // in this batch rather than one wake-up of Python each.
                tokio::task::yield_now().await;
                while bytes < budget {
                    match records.next().now_or_never() {
                        Some(Some(next)) => {
                            bytes += record::Record::weight(&next);
                            batch.push(next);
                        }
                        Some(None) => {
                            ended = true;
                            break;
                        }
                        None => break,
                    }
                }
            }
            write(&mut state, &batch).await?;
            if ended {
                state.ended = true;
                state.records = None;
                if let Some(sink) = state.journal.take() {
                    sink.finish().await.map_err(|e| PyFailure::Output(e.to_string()))?;
                }
            }
            Ok(Batch { records: batch, want_input: false, ended })
        }
    }
}

/// An error made on the runtime, raised on the Python side.
#[derive(Debug)]
enum PyFailure {
    /// The output cannot be opened or written (`outofsync.OutputError`).
    Output(String),
}

impl PyFailure {
    fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            PyFailure::Output(message) => record::output_error(py, message),
        }
    }
}

/// Opens the journal (if any) and starts the engine.
async fn start(
    state: &mut State,
    fetcher: Fetcher,
    settings: RunSettings,
    feed: &Arc<Feed>,
    shutdown: Shutdown,
) -> Result<(), PyFailure> {
    let mut done = Done::default();
    if let Some(path) = settings.output {
        let manifest = Manifest::for_program(fetcher.config());
        let (opened, start) = (path.clone(), settings.start);
        // Reading a large output back takes a while: off the runtime's workers.
        let journal = tokio::task::spawn_blocking(move || Journal::open(&opened, start, &manifest))
            .await
            .map_err(|e| PyFailure::Output(e.to_string()))?
            .map_err(|e| PyFailure::Output(e.to_string()))?;
        let sink = Sink::file(journal.file, &Destination::File(path), settings.fsync)
            .map_err(|e| PyFailure::Output(e.to_string()))?;
        state.journal = Some(sink);
        done = journal.done;
    }
    let max_pages = fetcher.config().max_pages;
    let inputs =
        feed.stream().filter_map(move |(i, input)| future::ready(still_to_do(&done, i, input, max_pages)));
    let order =
        if settings.ordered { Order::Input { window: fetcher.admission_slots() } } else { Order::Completion };
    state.records = Some(Box::pin(
        fetcher.fetch_indexed(inputs, RunOptions { order, shutdown, ..RunOptions::default() }),
    ));
    Ok(())
}

/// Writes a batch to the journal, if there is one, and hands it to the writer at once: what
/// Python has seen is on its way to the file.
async fn write(state: &mut State, batch: &[Record]) -> Result<(), PyFailure> {
    let Some(sink) = state.journal.as_mut() else { return Ok(()) };
    let mut gone = false;
    for record in batch {
        // Python keeps the batch: the journal writes each line from the record as it is.
        if sink.push_ref(record).await.is_err() {
            gone = true;
            break;
        }
    }
    if gone || sink.flush().await.is_err() {
        let sink = state.journal.take().expect("checked above");
        let why = match sink.finish().await {
            Err(e) => e.to_string(),
            Ok(()) => "the writer stopped".to_owned(),
        };
        return Err(PyFailure::Output(why));
    }
    Ok(())
}

/// A batch as Python sees it: `(records, want_input, ended)`.
fn to_python(py: Python<'_>, batch: Result<Batch, PyFailure>) -> PyResult<Py<PyAny>> {
    let batch = batch.map_err(|failure| failure.into_py(py))?;
    let records = PyList::empty(py);
    for r in batch.records {
        records.append(Py::new(py, record::Record::new(r))?)?;
    }
    Ok((records, batch.want_input, batch.ended).into_pyobject(py)?.into_any().unbind())
}

#[pymethods]
impl Flow {
    /// Converts and queues inputs (a list); returns how many. Raises `TypeError` naming the
    /// first item of a wrong type (those before it are queued).
    fn push(&self, items: &Bound<'_, PyList>) -> PyResult<usize> {
        self.feed.push(items.iter())
    }

    /// Inputs the run takes now.
    fn room(&self) -> usize {
        self.feed.room()
    }

    /// No more inputs: the run ends once the last request has its record.
    fn close_input(&self) {
        self.feed.close();
    }

    /// Starts waiting for the next batch on the runtime; the batch, `(records, want_input,
    /// ended)`, comes back through `hub` under the returned token.
    fn next_batch(&self, hub: &Hub, wake_on_hunger: bool) -> PyResult<u64> {
        self.check_pid()?;
        let batch = self.batch(wake_on_hunger, None);
        hub.spawn(&self.runtime, async move {
            let batch = batch.await;
            Box::new(move |py: Python<'_>| to_python(py, batch)) as Outcome
        })
    }

    /// The next batch, waiting in this thread (without the GIL), and raising `KeyboardInterrupt`
    /// on Ctrl-C. For code without an event loop.
    fn next_batch_blocking(&self, py: Python<'_>, wake_on_hunger: bool) -> PyResult<Py<PyAny>> {
        self.check_pid()?;
        loop {
            let batch = py.detach(|| self.runtime.block_on(self.batch(wake_on_hunger, Some(TICK))));
            if let Ok(Batch { records, want_input: false, ended: false }) = &batch
                && records.is_empty()
            {
                py.check_signals()?;
                continue;
            }
            return to_python(py, batch);
        }
    }

    /// Ends the run now: no more inputs, the requests in flight are cancelled (they get no
    /// record), and the journal gets what was handed over and is synced.
    ///
    /// Raises `outofsync.OutputError` if the journal could not be written.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.shutdown.cancel();
        self.feed.close();
        if self.pid != std::process::id() || !crate::runtime::alive() {
            return Ok(());
        }
        let state = self.state.clone();
        let finished = py.detach(|| {
            self.runtime.block_on(async move {
                let mut state = state.lock().await;
                state.records = None;
                state.ended = true;
                match state.journal.take() {
                    Some(sink) => sink.finish().await.map_err(|e| e.to_string()),
                    None => Ok(()),
                }
            })
        });
        finished.map_err(|message| record::output_error(py, message))
    }
}

impl Drop for Flow {
    /// A run nobody reads any more: its requests are cancelled. The records already handed to
    /// the journal's writer still reach the file.
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.feed.close();
    }
}
