//! The drivers behind [`Fetcher::fetch_indexed`](super::Fetcher::fetch_indexed): they pull
//! numbered inputs, run them concurrently, and deliver the records in completion order or in
//! input order, until the input ends or a [`Shutdown`] stops them.
//!
//! # What bounds memory
//!
//! - Completion order: admission slots, a small multiple of the concurrency. Each slot is a
//!   worker task, started when needed, that reads an input only when it is free to run it and is
//!   free again once the input's records are handed on.
//! - Input order: the reorder *window*, a bounded channel of running inputs consumed in input
//!   order. The driver blocks when the channel is full, so at most `window + 1` inputs run at
//!   once; a slow request at the head holds the window until it ends. An input that makes several
//!   records (pages) hands them over through a small channel of its own, so a walk ahead of the
//!   head pauses after [`PAGES_AHEAD`] pages instead of piling them up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use futures_util::{Stream, StreamExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use super::children::{Kids, Kin, ResumedChildren};
use super::run::Engine;

/// Records an input running ahead of the head of the window may hold before it waits.
pub const PAGES_AHEAD: usize = 4;
use super::shutdown::Shutdown;
use crate::record::Record;
use crate::request::Input;

/// The order in which records are delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// As each request completes (the fastest; memory is bounded by admission slots).
    #[default]
    Completion,
    /// In input order, through a reorder window of this many requests: when it is full, no new
    /// request starts until the oldest unfinished one ends.
    Input {
        /// Requests started but not yet delivered, at most (at least 1).
        window: usize,
    },
}

/// How [`Fetcher::fetch_indexed`](super::Fetcher::fetch_indexed) runs.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The order of the records. Default: completion order.
    pub order: Order,
    /// Stops the run from outside. Default: a handle nobody triggers.
    pub shutdown: Shutdown,
    /// The children (`--then`) a resume left to run, by input; each runs before the rest of its
    /// input. Default: none.
    pub resumed_children: ResumedChildren,
}

/// Records in completion order; see the module documentation.
///
/// Requests run on *workers*: tasks that each take the next input, run it to its end, hand its
/// records on and take the next, so that a request costs no task of its own, nor the slot and the
/// handles that would go with one (BENCHMARKS.md says what that saved). A worker
/// is an admission slot: it reads an input only when it is free to run it. Workers are started
/// as they are needed — one more whenever a worker takes an input and none is left waiting for
/// the next — up to `slots`, and end with the input.
pub(super) fn completion<S, I>(
    engine: Arc<Engine>,
    inputs: S,
    slots: usize,
    shutdown: Shutdown,
    resumed: ResumedChildren,
) -> impl Stream<Item = Record> + Send + 'static
where
    S: Stream<Item = (u64, I)> + Send + 'static,
    I: Into<Input> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(slots);
    let crew = Arc::new(Crew {
        engine,
        inputs: tokio::sync::Mutex::new(Box::pin(inputs.fuse())),
        shutdown,
        slots: slots.max(1),
        started: AtomicUsize::new(1),
        waiting: AtomicUsize::new(0),
        // Children anywhere in the run share as many permits as there are workers.
        kin: Kin { kids: Kids::Shared(Arc::new(Semaphore::new(slots.max(1)))), resumed },
    });
    start_worker(crew, tx);
    ReceiverStream::new(rx)
}

/// What the workers of a completion-order run share.
struct Crew<S> {
    engine: Arc<Engine>,
    /// The input, read by one worker at a time.
    inputs: tokio::sync::Mutex<Pin<Box<futures_util::stream::Fuse<S>>>>,
    shutdown: Shutdown,
    /// The most workers.
    slots: usize,
    /// Workers started so far.
    started: AtomicUsize,
    /// Workers waiting for an input.
    waiting: AtomicUsize,
    /// How the children of `--then` run.
    kin: Kin,
}

/// Spawns a worker. (A function of its own, and the worker boxed, because a worker starts others:
/// `work` spawning `work` directly is a future whose type holds itself.)
fn start_worker<S, I>(crew: Arc<Crew<S>>, tx: mpsc::Sender<Record>)
where
    S: Stream<Item = (u64, I)> + Send + 'static,
    I: Into<Input> + Send + 'static,
{
    let worker: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(work(crew, tx));
    tokio::spawn(worker);
}

/// One worker: inputs to their end, one at a time, until the input ends or is stopped.
async fn work<S, I>(crew: Arc<Crew<S>>, tx: mpsc::Sender<Record>)
where
    S: Stream<Item = (u64, I)> + Send + 'static,
    I: Into<Input> + Send + 'static,
{
    loop {
        if tx.is_closed() {
            break;
        }
        crew.waiting.fetch_add(1, Ordering::AcqRel);
        let next = async { crew.inputs.lock().await.next().await };
        let next = unless_stopped(&crew.shutdown, next).await;
        let waiting = crew.waiting.fetch_sub(1, Ordering::AcqRel) - 1;
        let Some((i, input)) = next else { break };
        if waiting == 0 && crew.started.load(Ordering::Acquire) < crew.slots {
            // Nobody is left to take the next input: one more worker, unless all are started.
            if crew.started.fetch_add(1, Ordering::AcqRel) < crew.slots {
                start_worker(crew.clone(), tx.clone());
            }
        }
        // The slot (this worker) is free again only after the records are handed on, so a slow
        // consumer holds back the input instead of piling up records.
        run_one(&crew.engine, i, input.into(), &tx, &crew.shutdown, &crew.kin).await;
    }
    // The stream ends when the last worker drops its `tx`.
}

/// Records in input order; see the module documentation.
pub(super) fn in_order<S, I>(
    engine: Arc<Engine>,
    inputs: S,
    window: usize,
    shutdown: Shutdown,
    resumed: ResumedChildren,
) -> impl Stream<Item = Record> + Send + 'static
where
    S: Stream<Item = (u64, I)> + Send + 'static,
    I: Into<Input> + Send,
{
    let (tx, rx) = mpsc::channel::<Running>(window.max(1));
    let stopped = shutdown.clone();
    tokio::spawn(async move {
        let mut inputs = std::pin::pin!(inputs);
        loop {
            // A place in the window first, then the input: a full window holds back the reader.
            let next = async {
                let permit = tx.reserve().await.ok()?;
                let (i, input) = inputs.next().await?;
                Some((permit, i, input.into()))
            };
            let Some((permit, i, input)) = unless_stopped(&stopped, next).await else { break };
            let (engine, shutdown) = (engine.clone(), stopped.clone());
            let kin = Kin { kids: Kids::InOrder, resumed: resumed.clone() };
            let (records_tx, records) = mpsc::channel(PAGES_AHEAD);
            // Boxed, as in completion order.
            let task = tokio::spawn(Box::pin(async move {
                run_one(&engine, i, input, &records_tx, &shutdown, &kin).await
            }));
            permit.send(Running { records, task });
        }
    });
    InOrder { rx, head: None, ended: false }
}

/// An input in the window: its records as they come, and whether it ran to its end.
struct Running {
    records: mpsc::Receiver<Record>,
    task: JoinHandle<bool>,
}

/// The consumer side of the window: drains the inputs one by one, in the order they were
/// started, each to its last record. A cancelled input ends the stream: what finished after it is
/// dropped too, so records never jump a gap and an interrupted ordered output stays a prefix of
/// the input (pages included) that a resume extends. (A hand-written `Stream` rather than
/// `unfold`, so it is `Unpin` like `fetch_all`'s.)
struct InOrder {
    rx: mpsc::Receiver<Running>,
    head: Option<Running>,
    ended: bool,
}

impl Stream for InOrder {
    type Item = Record;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Record>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            let head = match &mut self.head {
                Some(head) => head,
                None => match ready!(self.rx.poll_recv(cx)) {
                    Some(head) => self.head.insert(head),
                    None => return Poll::Ready(None),
                },
            };
            if let Some(record) = ready!(head.records.poll_recv(cx)) {
                return Poll::Ready(Some(record));
            }
            // The input's records are all out; did it end, or was it cancelled half-way?
            let finished = ready!(Pin::new(&mut head.task).poll(cx));
            self.head = None;
            match finished {
                Ok(true) => {}
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Ok(false) | Err(_) => self.ended = true,
            }
        }
    }
}

/// The next input, unless the input is stopped first. An input read but not yet started is then
/// dropped: it has no record, so a resume fetches it.
async fn unless_stopped<T>(shutdown: &Shutdown, next: impl Future<Output = Option<T>>) -> Option<T> {
    tokio::select! {
        biased;
        () = shutdown.input_stopped() => None,
        next = next => next,
    }
}

/// One input to its end — true — unless the run is cancelled first: then no record for what was
/// in flight (pages already handed on stay), and false.
async fn run_one(
    engine: &Engine,
    i: u64,
    input: Input,
    out: &mpsc::Sender<Record>,
    shutdown: &Shutdown,
    kin: &Kin,
) -> bool {
    tokio::select! {
        biased;
        () = shutdown.cancelled() => false,
        () = engine.run_with(i, input, out, kin) => true,
    }
}
