//! `GET /capacity`: a backend of hidden capacity — `c` workers and a FIFO queue — that answers 503
//! at once beyond them, as an overloaded service behind a load balancer does.
//!
//! `?c=N&ms=S&jitter=J&bimodal=P&queue=Q&err=E&key=K&schedule=T:F,…`
//!
//! Each request holds a worker for S·(1 + J·Exp(1)) ms, ten times that with probability P; it
//! waits for a worker in arrival order when all are busy, unless `c + Q` are already busy or
//! waiting: then it gets a 503 at once. A share E of the answers are 503 whatever the load.
//! `schedule` scales `c` over time from the key's first request. Defaults: c 8, ms 50, jitter 0,
//! bimodal 0, queue 1000, err 0. Requests with the same key share the workers (`c` of the first
//! request to use the key); the server-side truth is under `/stats?key=K`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::reply::{self, Answer, Query, bad_request};
use super::schedule::Schedule;
use super::truth::{Counted, Truth};

/// The most workers a key may have.
pub const MAX_WORKERS: usize = 100_000;
/// The longest service time, in milliseconds.
pub const MAX_MS: u64 = 60_000;
/// The most keys kept; past it, new keys share one pool.
pub const MAX_POOLS: usize = 1_000;

/// The worker pools, by key.
#[derive(Debug, Default)]
pub struct Pools {
    map: Mutex<HashMap<String, Arc<Pool>>>,
    rng: Mutex<Option<fastrand::Rng>>,
}

#[derive(Debug)]
struct Pool {
    workers: usize,
    queue: usize,
    schedule: Schedule,
    started: Instant,
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    busy: usize,
    waiting: VecDeque<oneshot::Sender<()>>,
}

/// A worker held; given back (to the next in line) when dropped, whatever becomes of the request.
struct Worker(Arc<Pool>);

impl Pools {
    /// Pools whose random draws (jitter, bimodal, errors) come from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { map: Mutex::default(), rng: Mutex::new(Some(fastrand::Rng::with_seed(seed ^ 0xcafe))) }
    }

    fn draw(&self) -> (f64, f64, f64) {
        let mut rng = self.rng.lock().unwrap();
        let rng = rng.get_or_insert_with(fastrand::Rng::new);
        (rng.f64(), rng.f64(), rng.f64())
    }
}

impl Pool {
    /// Workers in force now.
    fn capacity(&self) -> usize {
        let factor = self.schedule.factor(self.started.elapsed().as_secs_f64());
        ((self.workers as f64 * factor).round() as usize).max(1)
    }

    fn release(&self) {
        let capacity = self.capacity();
        let mut state = self.state.lock().unwrap();
        state.busy = state.busy.saturating_sub(1);
        while state.busy < capacity {
            let Some(next) = state.waiting.pop_front() else { break };
            // A waiter whose client went away has dropped its receiver: the worker goes to the next.
            if next.send(()).is_ok() {
                state.busy += 1;
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// `GET /capacity`; see the module documentation.
pub async fn capacity(pools: &Pools, truth: &Arc<Truth>, query: &Query<'_>) -> Answer {
    let c = reply::capped("c", query.get::<usize>("c")?.unwrap_or(8), MAX_WORKERS)?.max(1);
    let ms = reply::capped("ms", query.get::<u64>("ms")?.unwrap_or(50), MAX_MS)?;
    let share = |name: &str| -> Result<f64, reply::Refusal> {
        let v = query.get::<f64>(name)?.unwrap_or(0.0);
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(bad_request(format!("{name} must be within 0..=1")))
        }
    };
    let (bimodal, err) = (share("bimodal")?, share("err")?);
    let jitter = query.get::<f64>("jitter")?.unwrap_or(0.0);
    if !(0.0..=100.0).contains(&jitter) {
        return Err(bad_request("jitter must be within 0..=100"));
    }
    let queue = reply::capped("queue", query.get::<usize>("queue")?.unwrap_or(1000), MAX_WORKERS)?;
    let schedule = Schedule::parse(query.str("schedule"))?;
    let key = query.str("key").unwrap_or("").to_owned();
    let pool = {
        let mut map = pools.map.lock().unwrap();
        let key = if map.contains_key(&key) || map.len() < MAX_POOLS { key.as_str() } else { "(other)" };
        map.entry(key.to_owned())
            .or_insert_with(|| {
                let state = Mutex::new(PoolState::default());
                Arc::new(Pool { workers: c, queue, schedule, started: Instant::now(), state })
            })
            .clone()
    };
    let visit = truth.arrive(&key);
    let waiting = {
        let capacity = pool.capacity();
        let mut state = pool.state.lock().unwrap();
        if state.busy + state.waiting.len() >= capacity + pool.queue {
            None
        } else if state.busy < capacity && state.waiting.is_empty() {
            state.busy += 1;
            Some(None)
        } else {
            let (tx, rx) = oneshot::channel();
            state.waiting.push_back(tx);
            Some(Some(rx))
        }
    };
    let Some(waiting) = waiting else {
        visit.done(Counted::Unavailable);
        return Ok(reply::json(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": "over capacity" })));
    };
    if let Some(rx) = waiting
        && rx.await.is_err()
    {
        return Err(reply::error(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping"));
    }
    let _worker = Worker(pool.clone());
    let (slow, exp, fail) = pools.draw();
    let mut service = Duration::from_millis(ms).mul_f64(1.0 + jitter * -(1.0 - exp).ln());
    if slow < bimodal {
        service *= 10;
    }
    tokio::time::sleep(service.min(Duration::from_millis(MAX_MS))).await;
    if fail < err {
        visit.done(Counted::Unavailable);
        return Ok(reply::json(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": "random failure" })));
    }
    visit.done(Counted::Ok);
    Ok(reply::json(StatusCode::OK, &json!({ "ok": true, "service_ms": service.as_secs_f64() * 1000.0 })))
}
