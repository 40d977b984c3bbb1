//! The drivers behind [`Fetcher::fetch_indexed`](super::Fetcher::fetch_indexed): they pull
//! numbered inputs, run each as a task of its own, and deliver the records in completion order or
//! in input order, until the input ends or a [`Shutdown`] stops them.
//!
//! # What bounds memory
//!
//! - Completion order: admission slots, a small multiple of the concurrency. A slot is taken
//!   before an input is read and given back once its record is handed on.
//! - Input order: the reorder *window*, a bounded channel of task handles consumed in input
//!   order. The driver blocks when the channel is full, so at most `window + 1` requests (and
//!   their records) exist at once; a slow request at the head holds the window until it ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_util::{Stream, StreamExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use super::execute::Engine;
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
}

/// Records in completion order; see the module documentation.
pub(super) fn completion<S, I>(
    engine: Arc<Engine>,
    inputs: S,
    slots: usize,
    shutdown: Shutdown,
) -> impl Stream<Item = Record> + Send + 'static
where
    S: Stream<Item = (u64, I)> + Send + 'static,
    I: Into<Input> + Send,
{
    let (tx, rx) = mpsc::channel(slots);
    tokio::spawn(async move {
        let admission = Arc::new(Semaphore::new(slots));
        let mut inputs = std::pin::pin!(inputs);
        loop {
            // Take the slot first: the input is not even read until a request can run.
            let next = async {
                let slot = admission.clone().acquire_owned().await.ok()?;
                if tx.is_closed() {
                    return None;
                }
                let (i, input) = inputs.next().await?;
                Some((slot, i, input.into()))
            };
            let Some((slot, i, input)) = unless_stopped(&shutdown, next).await else { break };
            let (engine, tx, shutdown) = (engine.clone(), tx.clone(), shutdown.clone());
            tokio::spawn(async move {
                if let Some(record) = run_one(&engine, i, input, &shutdown).await {
                    // The slot is given back only after the record is handed on, so a slow
                    // consumer holds back the input instead of piling up records.
                    _ = tx.send(record).await;
                }
                drop(slot);
            });
        }
        // The loop's `tx` goes here; the stream ends when the last request task drops its clone.
    });
    ReceiverStream::new(rx)
}

/// Records in input order; see the module documentation.
pub(super) fn in_order<S, I>(
    engine: Arc<Engine>,
    inputs: S,
    window: usize,
    shutdown: Shutdown,
) -> impl Stream<Item = Record> + Send + 'static
where
    S: Stream<Item = (u64, I)> + Send + 'static,
    I: Into<Input> + Send,
{
    let (tx, rx) = mpsc::channel::<JoinHandle<Option<Record>>>(window.max(1));
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
            permit.send(tokio::spawn(async move { run_one(&engine, i, input, &shutdown).await }));
        }
    });
    InOrder { rx, head: None, ended: false }
}

/// The consumer side of the window: awaits the task handles one by one, in the order they were
/// started. A cancelled request ends the stream: what finished after it is dropped too, so records
/// never jump a gap and an interrupted ordered output stays a prefix of the input that a resume
/// extends. (A hand-written `Stream` rather than `unfold`, so it is `Unpin` like `fetch_all`'s.)
struct InOrder {
    rx: mpsc::Receiver<JoinHandle<Option<Record>>>,
    head: Option<JoinHandle<Option<Record>>>,
    ended: bool,
}

impl Stream for InOrder {
    type Item = Record;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Record>> {
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
        let finished = ready!(Pin::new(head).poll(cx));
        self.head = None;
        match finished {
            Ok(Some(record)) => Poll::Ready(Some(record)),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(None) | Err(_) => {
                self.ended = true;
                Poll::Ready(None)
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

/// One request, unless the run is cancelled first (then no record at all).
async fn run_one(engine: &Engine, i: u64, input: Input, shutdown: &Shutdown) -> Option<Record> {
    tokio::select! {
        biased;
        () = shutdown.cancelled() => None,
        record = engine.record(i, input) => Some(record),
    }
}
