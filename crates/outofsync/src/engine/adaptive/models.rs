//! Servers of hidden capacity, in process and on tokio's paused clock, for the controllers' tests:
//! a token bucket, a fixed window and a queue of c workers, whose capacity the client is never
//! told and may change on a schedule. Each answers through [`Exchange`], so the whole engine —
//! limits, pace, window, retries — runs against it in virtual time, and each keeps the
//! server-side truth per second (accepted, 429, 503, in flight, latency).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{HeaderValue, RETRY_AFTER};
use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

use crate::engine::exchange::{Exchange, Exchanged, Hop, Response, Wire};
use crate::engine::failure::Failure;

/// What a model does with one request.
#[derive(Debug)]
pub enum Kind {
    /// A token bucket of `rate` per second and `burst` tokens; over it, 429 (with `Retry-After`
    /// in whole seconds if `retry_after`).
    Bucket { rate: f64, burst: f64, retry_after: bool },
    /// A fixed window of `limit` requests per `window`; over it, 429 with `Retry-After` to the
    /// window's end.
    Window { limit: u32, window: Duration },
    /// `workers` serving one request each for `service` (× (1 + jitter·Exp(1))), a FIFO queue of
    /// `queue` places, 503 beyond; `errors` of the answers are 503 whatever the load.
    Queue { workers: usize, service: Duration, jitter: f64, queue: usize, errors: f64 },
}

/// One second of server-side truth.
#[derive(Clone, Debug, Default)]
pub struct Second {
    pub ok: u32,
    pub throttled: u32,
    pub unavailable: u32,
    pub max_in_flight: usize,
    pub latencies_ms: Vec<f64>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    at: Instant,
    /// The fixed window's start and count.
    window: (Instant, u32),
    busy: usize,
    waiting: VecDeque<tokio::sync::oneshot::Sender<()>>,
    in_flight: usize,
    seconds: BTreeMap<u64, Second>,
    rng: fastrand::Rng,
}

/// A server of hidden capacity for one host.
#[derive(Debug)]
pub struct Model {
    kind: Kind,
    /// Latency of an accepted request (buckets and windows; a queue has its own).
    latency: Duration,
    /// Capacity changes: from `t` seconds on, capacity × factor.
    schedule: Vec<(f64, f64)>,
    /// A window states its quota in `RateLimit-Policy` and `RateLimit` headers.
    headers: bool,
    start: Instant,
    state: Mutex<State>,
}

impl Model {
    pub fn new(kind: Kind) -> Self {
        let now = Instant::now();
        let tokens = match kind {
            Kind::Bucket { burst, .. } => burst,
            _ => 0.0,
        };
        Self {
            kind,
            latency: Duration::from_millis(20),
            schedule: Vec::new(),
            headers: false,
            start: now,
            state: Mutex::new(State {
                tokens,
                at: now,
                window: (now, 0),
                busy: 0,
                waiting: VecDeque::new(),
                in_flight: 0,
                seconds: BTreeMap::new(),
                rng: fastrand::Rng::with_seed(7),
            }),
        }
    }

    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// A window says its quota in headers (draft -08 `RateLimit-Policy` and `RateLimit`).
    pub fn with_headers(mut self) -> Self {
        self.headers = true;
        self
    }

    /// From `t` seconds on, capacity × `factor`.
    pub fn step(mut self, t: f64, factor: f64) -> Self {
        self.schedule.push((t, factor));
        self
    }

    fn factor(&self, now: Instant) -> f64 {
        let t = now.saturating_duration_since(self.start).as_secs_f64();
        self.schedule.iter().rfind(|(at, _)| t >= *at).map_or(1.0, |(_, f)| *f)
    }

    /// The per-second truth, from the model's start.
    pub fn seconds(&self) -> BTreeMap<u64, Second> {
        self.state.lock().unwrap().seconds.clone()
    }

    fn second<'a>(&self, state: &'a mut State, now: Instant) -> &'a mut Second {
        let s = now.saturating_duration_since(self.start).as_secs();
        state.seconds.entry(s).or_default()
    }

    /// Serves one request: its status, its `Retry-After` in seconds, and its headers.
    async fn serve(&self) -> (u16, Option<u64>, HeaderMap) {
        let mut headers = HeaderMap::new();
        let arrived = Instant::now();
        let factor = self.factor(arrived);
        let (status, retry_after, wait_for_worker, service, holds) =
            self.arrive(arrived, factor, &mut headers);
        if let Some(rx) = wait_for_worker {
            _ = rx.await;
        }
        tokio::time::sleep(service).await;
        self.leave(arrived, status, holds);
        (status, retry_after, headers)
    }

    /// A request arrives: admitted, throttled, queued or turned away.
    #[allow(clippy::type_complexity)]
    fn arrive(
        &self,
        arrived: Instant,
        factor: f64,
        headers: &mut HeaderMap,
    ) -> (u16, Option<u64>, Option<tokio::sync::oneshot::Receiver<()>>, Duration, bool) {
        let mut state = self.state.lock().unwrap();
        state.in_flight += 1;
        let in_flight = state.in_flight;
        let second = self.second(&mut state, arrived);
        second.max_in_flight = second.max_in_flight.max(in_flight);
        // Whether the request holds a worker of a queue until it is answered.
        let mut holds = false;
        let (status, retry_after, wait_for_worker, service) = match &self.kind {
            Kind::Bucket { rate, burst, retry_after } => {
                let (rate, burst) = (rate * factor, (burst * factor).max(1.0));
                let refill = arrived.saturating_duration_since(state.at).as_secs_f64() * rate;
                state.tokens = (state.tokens + refill).min(burst);
                state.at = arrived;
                if state.tokens >= 1.0 {
                    state.tokens -= 1.0;
                    (200, None, None, self.latency)
                } else {
                    let wait = ((1.0 - state.tokens) / rate).ceil().max(1.0) as u64;
                    (429, retry_after.then_some(wait), None, Duration::from_millis(1))
                }
            }
            Kind::Window { limit, window } => {
                let limit = (f64::from(*limit) * factor).round().max(1.0) as u32;
                let elapsed = arrived.saturating_duration_since(state.window.0);
                if elapsed >= *window {
                    let windows = (elapsed.as_nanos() / window.as_nanos()) as u32;
                    state.window = (state.window.0 + *window * windows, 0);
                }
                let end = state.window.0 + *window;
                let reset = end.saturating_duration_since(arrived).as_secs_f64().ceil().max(1.0) as u64;
                let answer = if state.window.1 < limit {
                    state.window.1 += 1;
                    (200, None, None, self.latency)
                } else {
                    (429, Some(reset), None, Duration::from_millis(1))
                };
                if self.headers {
                    let left = limit - state.window.1;
                    let policy = format!("\"w\";q={limit};w={}", window.as_secs());
                    headers.insert("ratelimit-policy", HeaderValue::from_str(&policy).unwrap());
                    let current = format!("\"w\";r={left};t={reset}");
                    headers.insert("ratelimit", HeaderValue::from_str(&current).unwrap());
                }
                answer
            }
            Kind::Queue { workers, service, jitter, queue, errors } => {
                let workers = ((*workers as f64) * factor).round().max(1.0) as usize;
                let exp = -(1.0 - state.rng.f64()).ln();
                let service = service.mul_f64(1.0 + jitter * exp);
                let random_error = state.rng.f64() < *errors;
                if state.busy + state.waiting.len() >= workers + queue {
                    (503, None, None, Duration::from_millis(1))
                } else if state.busy < workers && state.waiting.is_empty() {
                    state.busy += 1;
                    holds = true;
                    (if random_error { 503 } else { 200 }, None, None, service)
                } else {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    state.waiting.push_back(tx);
                    holds = true;
                    (if random_error { 503 } else { 200 }, None, Some(rx), service)
                }
            }
        };
        (status, retry_after, wait_for_worker, service, holds)
    }

    /// A request is answered: the server's truth counts it, and a queue's worker is free.
    fn leave(&self, arrived: Instant, status: u16, holds: bool) {
        let done = Instant::now();
        let mut state = self.state.lock().unwrap();
        state.in_flight -= 1;
        if let Kind::Queue { workers, .. } = &self.kind
            && holds
        {
            // A worker is free: the next in line takes it, unless capacity went down meanwhile.
            let workers = ((*workers as f64) * self.factor(done)).round().max(1.0) as usize;
            state.busy -= 1;
            while state.busy < workers {
                let Some(next) = state.waiting.pop_front() else { break };
                if next.send(()).is_ok() {
                    state.busy += 1;
                }
            }
        }
        let second = self.second(&mut state, done);
        match status {
            200 => {
                second.ok += 1;
                second.latencies_ms.push(done.saturating_duration_since(arrived).as_secs_f64() * 1000.0);
            }
            429 => second.throttled += 1,
            _ => second.unavailable += 1,
        }
    }
}

/// Models by host name; a request to any other host panics.
#[derive(Clone, Debug, Default)]
pub struct Models {
    hosts: Arc<BTreeMap<String, Arc<Model>>>,
}

impl Models {
    pub fn one(host: &str, model: Model) -> Self {
        Self::default().with(host, model)
    }

    pub fn with(self, host: &str, model: Model) -> Self {
        let mut hosts = (*self.hosts).clone();
        hosts.insert(host.to_owned(), Arc::new(model));
        Self { hosts: Arc::new(hosts) }
    }

    pub fn get(&self, host: &str) -> &Model {
        &self.hosts[host]
    }
}

impl Exchange for Models {
    async fn exchange(&self, hop: &Hop, wire: &mut Wire) -> Result<Exchanged, Failure> {
        let host = hop.url.host_str().unwrap_or("");
        let model = self.hosts.get(host).unwrap_or_else(|| panic!("no model for {host}"));
        wire.version = Some(http::Version::HTTP_11);
        let (status, retry_after, mut headers) = model.serve().await;
        if let Some(seconds) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        Ok(Exchanged::Response(Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: Vec::new(),
        }))
    }
}
