//! A worker: takes tasks from a job's queue into the same engine as `fetch` (limits, retries,
//! cooldowns, timeouts), publishes each record with the task's ack, renews the leases of the tasks
//! it holds, and takes over the tasks of workers that stopped.
//!
//! # Tasks and who holds what
//!
//! - The *taker* reads new tasks (`XREADGROUP`) when there is room: at most `capacity` tasks are
//!   held at once (read, running, or finished but not yet published), counted by a semaphore.
//! - The *reclaimer* takes over, every half lease, tasks that other workers held past the lease
//!   without renewing it; one delivered `max_deliveries` times already is not fetched again but
//!   ends as a failure record (poison: every worker that took it stopped before finishing it).
//! - The *renewer*, every third of a lease, renews the leases of the tasks held (the heartbeat).
//! - This task, the *publisher*, batches records as they come and publishes each batch in one
//!   round trip, the ack and the record together: a record goes out only if its task was still
//!   pending, so of two workers that fetched one task, exactly one publishes.
//!
//! The taker and the reclaimer feed one channel into [`Fetcher::fetch_indexed`]; when both have
//! stopped (the job has no task left, or the worker is stopping) the engine finishes what it
//! holds and the record stream ends, which ends the publisher.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use outofsync::Fetcher;
use outofsync::engine::{RunOptions, Shutdown};
use outofsync::metrics::Metrics;
use outofsync::record::{ErrorKind, RecordError};
use outofsync::request::Input;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::patience::patiently;
use crate::queue::{Delivery, EntryId, Finished, JobInfo, Queue, Result};
use crate::task;

/// The most tasks read in one round trip.
const TAKE_MAX: usize = 256;
/// The most records published in one round trip.
const PUBLISH_MAX: usize = 256;
/// How long a read waits for new tasks before the worker looks whether the job is done.
const TAKE_BLOCK: Duration = Duration::from_secs(1);

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Its name in the consumer group: unique in the fleet (`host-pid-random`).
    pub consumer: String,
    /// Tasks held at once, at most (read ahead of the engine, running, or being published).
    pub capacity: usize,
    /// Counters for `--metrics`.
    pub metrics: Arc<Metrics>,
    /// Stops the worker from outside: no new task is taken; what is in flight ends or is
    /// cancelled (a cancelled task stays pending, and another worker takes it over).
    pub shutdown: Shutdown,
}

/// What a worker did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Records it published.
    pub published: u64,
    /// Records it made that another worker had published first.
    pub duplicates: u64,
    /// Tasks it took over from workers that stopped.
    pub reclaimed: u64,
    /// Tasks it ended as poison.
    pub poisoned: u64,
}

/// What the worker's tasks share: the tasks held (input index → entry, and whether it is ended
/// as poison) and the room for more.
struct Held {
    tasks: Mutex<HashMap<u64, (EntryId, bool)>>,
    room: Semaphore,
}

/// Runs a worker on `queue`'s job until the job has no task left or `options.shutdown` stops it.
///
/// # Errors
/// The queue failed for a reason that waiting does not cure (a task it cannot read, the job
/// deleted).
pub async fn work<Q: Queue>(
    queue: Arc<Q>,
    fetcher: &Fetcher,
    job: &JobInfo,
    options: WorkerOptions,
) -> Result<WorkerReport> {
    let capacity = options.capacity.max(1);
    let held = Arc::new(Held { tasks: Mutex::new(HashMap::new()), room: Semaphore::new(capacity) });
    let (tx, rx) = mpsc::channel::<(u64, Input)>(capacity);
    // Ends the taker and the reclaimer: the job is done, or the worker stops.
    let taking = CancellationToken::new();
    let failure = Arc::new(Mutex::new(None));
    let feeder = Feeder {
        queue: queue.clone(),
        held: held.clone(),
        tx,
        consumer: options.consumer.clone(),
        max_deliveries: job.spec.max_deliveries,
        capacity,
        metrics: options.metrics.clone(),
        taking: taking.clone(),
        failure: failure.clone(),
    };
    let stop = {
        let (shutdown, taking) = (options.shutdown.clone(), taking.clone());
        tokio::spawn(async move {
            shutdown.input_stopped().await;
            taking.cancel();
        })
    };
    let taker = tokio::spawn(feeder.clone().take_loop());
    let reclaimer = tokio::spawn(feeder.reclaim_loop(job.spec.lease));
    let renewer =
        tokio::spawn(renew_loop(queue.clone(), held.clone(), options.consumer.clone(), job.spec.lease));

    let run = RunOptions { shutdown: options.shutdown.clone(), ..RunOptions::default() };
    let mut records = fetcher.fetch_indexed(ReceiverStream::new(rx), run);
    let mut report = WorkerReport::default();
    let mut batch: Vec<Finished> = Vec::with_capacity(PUBLISH_MAX);
    let result = loop {
        let Some(record) = records.next().await else { break Ok(()) };
        let mut next = Some(record);
        while let Some(record) = next.take() {
            options.metrics.observe(&record);
            let entry = held.tasks.lock().unwrap().get(&record.i).cloned();
            if let Some((id, poison)) = entry {
                let mut line = Vec::with_capacity(record.line_len_hint());
                record.write_json_line(&mut line);
                let kind = record.error_kind().map_or("", ErrorKind::as_str);
                batch.push(Finished { id, i: record.i, ok: record.ok, kind, poison, line });
            }
            if batch.len() < PUBLISH_MAX {
                next = records.next().now_or_never().flatten();
            }
        }
        if batch.is_empty() {
            continue;
        }
        let published = match patiently("publishing records", || queue.finish(&batch)).await {
            Ok(published) => published,
            Err(e) => break Err(e),
        };
        let mut tasks = held.tasks.lock().unwrap();
        let ended = batch.len();
        for (finished, first) in batch.drain(..).zip(published) {
            tasks.remove(&finished.i);
            options.metrics.ended();
            if first {
                report.published += 1;
                report.poisoned += u64::from(finished.poison);
            } else {
                report.duplicates += 1;
                options.metrics.duplicates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        drop(tasks);
        held.room.add_permits(ended);
    };
    taking.cancel();
    for task in [taker, reclaimer, stop] {
        task.abort();
    }
    renewer.abort();
    report.reclaimed = options.metrics.reclaims.load(std::sync::atomic::Ordering::Relaxed);
    result?;
    match failure.lock().unwrap().take() {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// The taker and the reclaimer: they hand tasks to the engine.
struct Feeder<Q> {
    queue: Arc<Q>,
    held: Arc<Held>,
    tx: mpsc::Sender<(u64, Input)>,
    consumer: String,
    max_deliveries: u64,
    /// Tasks held at once, at most.
    capacity: usize,
    metrics: Arc<Metrics>,
    taking: CancellationToken,
    failure: Arc<Mutex<Option<crate::queue::QueueError>>>,
}

impl<Q> Clone for Feeder<Q> {
    fn clone(&self) -> Self {
        Feeder {
            queue: self.queue.clone(),
            held: self.held.clone(),
            tx: self.tx.clone(),
            consumer: self.consumer.clone(),
            max_deliveries: self.max_deliveries,
            capacity: self.capacity,
            metrics: self.metrics.clone(),
            taking: self.taking.clone(),
            failure: self.failure.clone(),
        }
    }
}

impl<Q: Queue> Feeder<Q> {
    /// Reads new tasks while there is room, until the job has none left or the worker stops.
    async fn take_loop(self) {
        loop {
            let permit = tokio::select! {
                () = self.taking.cancelled() => return,
                permit = self.held.room.acquire() => permit.expect("never closed"),
            };
            permit.forget();
            let mut room = 1;
            while room < TAKE_MAX.min(self.capacity)
                && self.held.room.try_acquire().map(|p| p.forget()).is_ok()
            {
                room += 1;
            }
            let taken = tokio::select! {
                () = self.taking.cancelled() => return,
                taken = patiently("taking tasks", || self.queue.take(&self.consumer, room, TAKE_BLOCK)) => taken,
            };
            let deliveries = match taken {
                Ok(deliveries) => deliveries,
                Err(e) => return self.fail(e),
            };
            self.held.room.add_permits(room.saturating_sub(deliveries.len()));
            if deliveries.is_empty() {
                match patiently("reading the job's state", || self.queue.remaining()).await {
                    // Every input submitted and every task finished (a finished task is deleted).
                    Ok(remaining) if remaining.sealed && remaining.tasks == 0 => {
                        self.taking.cancel();
                        return;
                    }
                    Ok(_) => continue,
                    Err(e) => return self.fail(e),
                }
            }
            for delivery in deliveries {
                if !self.hand_over(delivery).await {
                    return;
                }
            }
        }
    }

    /// Every half lease, takes over the tasks of workers that stopped, as room allows.
    async fn reclaim_loop(self, lease: Duration) {
        loop {
            let pause = lease.mul_f64(0.5 * (0.8 + 0.4 * fastrand::f64()));
            tokio::select! {
                () = self.taking.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
            let reclaimed = match self.queue.reclaim(&self.consumer, lease, TAKE_MAX.min(self.capacity)).await
            {
                Ok(reclaimed) => reclaimed,
                Err(e) if e.is_transient() => continue,
                Err(e) => return self.fail(e),
            };
            if reclaimed.is_empty() {
                continue;
            }
            let n = reclaimed.len();
            self.metrics.reclaims.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            tracing::info!("took over {n} tasks from workers that stopped");
            // Room for them: the semaphore is fair, so the room the taker gives back after its
            // next read comes here first, and reclaims are not starved by new tasks.
            let room = tokio::select! {
                () = self.taking.cancelled() => return,
                room = self.held.room.acquire_many(n as u32) => room.expect("never closed"),
            };
            room.forget();
            for delivery in reclaimed {
                if !self.hand_over(delivery).await {
                    return;
                }
            }
        }
    }

    /// Hands a task to the engine (holding its room). False when the engine is gone.
    async fn hand_over(&self, delivery: Delivery) -> bool {
        let poison = delivery.delivered_before >= self.max_deliveries;
        {
            let mut tasks = self.held.tasks.lock().unwrap();
            if tasks.contains_key(&delivery.i) {
                // Already running here (taken over from ourselves after a Redis outage): the run
                // in progress publishes it.
                self.held.room.add_permits(1);
                return true;
            }
            tasks.insert(delivery.i, (delivery.id.clone(), poison));
        }
        let mut input = task::decode(&delivery.task);
        if poison {
            input = poisoned(input, delivery.delivered_before);
            self.metrics.poisoned.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.metrics.started();
        self.tx.send((delivery.i, input)).await.is_ok()
    }

    fn fail(&self, e: crate::queue::QueueError) {
        tracing::error!("the worker stops: {e}");
        self.failure.lock().unwrap().get_or_insert(e);
        self.taking.cancel();
    }
}

/// The failure that ends a task delivered too often: not sent again.
fn poisoned(input: Input, deliveries: u64) -> Input {
    let error = RecordError::new(
        ErrorKind::Io,
        format!(
            "not fetched again: delivered to workers {deliveries} times, and each stopped before \
             finishing it (the job's --max-deliveries)"
        ),
    );
    match input {
        Input::Request(spec) | Input::Page { spec, .. } | Input::Unsent { spec, .. } => {
            Input::Unsent { spec, page: None, error }
        }
        invalid @ Input::Invalid(_) => invalid,
    }
}

/// The heartbeat: every third of a lease, renews the lease of every task held.
async fn renew_loop<Q: Queue>(queue: Arc<Q>, held: Arc<Held>, consumer: String, lease: Duration) {
    loop {
        let ids: Vec<EntryId> = held.tasks.lock().unwrap().values().map(|(id, _)| id.clone()).collect();
        if let Err(e) = queue.renew(&consumer, &ids).await {
            tracing::debug!("cannot renew leases now: {e}");
        }
        tokio::time::sleep(lease / 3).await;
    }
}
