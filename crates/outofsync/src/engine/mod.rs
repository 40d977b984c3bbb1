//! The engine: [`Fetcher`] turns a stream of [`Input`] into a stream of [`Record`], one per input,
//! fetched concurrently under every limit of its [`Config`].
//!
//! # How the loop holds memory to O(concurrency)
//!
//! A driver task pulls the next input only after taking an *admission* slot; each input runs as
//! its own tokio task (so both cores work) and gives its slot back only once its record has been
//! handed to the output channel. Slots are a small multiple of the concurrency, because a request
//! waiting for a retry or a cooldown holds no concurrency permit (see the `limits` module) but still holds
//! its admission slot. So however long the input, at most that many requests, records and parsed
//! inputs exist at once. [`Fetcher::fetch_indexed`] adds input order (a bounded reorder window)
//! and a [`Shutdown`] handle; the `drive` module holds both loops.

mod authorize;
mod builder;
mod config;
mod connector;
mod decode;
mod drive;
mod exchange;
mod failure;
mod filter;
mod limits;
pub mod machine;
mod paginate;
mod payload;
mod pool;
mod proxy;
mod rate;
mod redirect;
mod retry;
mod run;
mod shared;
mod shutdown;
mod tls;
mod trace;
mod transport;
mod tunnel;
mod validate;

use std::sync::Arc;

use futures_util::{Stream, StreamExt, stream};

pub use builder::FetcherBuilder;
pub use config::{
    BodyMode, BuildError, Config, HttpVersion, KeepHeaders, Proxies, Rate, Resolve, RetryPolicy, SendHook,
    StatusRanges, default_headers,
};
pub use drive::{Order, RunOptions};
pub use filter::{FilterError, JqFilter};
pub use paginate::Paginate;
pub use payload::classify as classify_body;
pub use proxy::ProxyError;
pub use retry::{RETRYABLE_STATUSES, is_idempotent};
pub use shared::{FleetLimits, FleetTurn, SharedLimits};
pub use shutdown::Shutdown;

use crate::record::Record;
use crate::request::{Input, RequestSpec};
use run::Engine;

/// Admission slots per unit of concurrency: room for requests that wait (retry, cooldown, a busy
/// host) without stalling the others.
const ADMISSION_FACTOR: usize = 4;

/// Fetches requests concurrently; every request ends as exactly one [`Record`].
///
/// Cheap to clone: clones share the connection pool and the limits.
///
/// # Examples
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use futures_util::StreamExt;
/// use outofsync::{Fetcher, RequestSpec};
///
/// let server = outofsync_server::Server::start()?;
/// let fetcher = Fetcher::builder().concurrency(8).build()?;
/// let specs: Vec<_> = (0..20).map(|n| RequestSpec::get(&server.url(&format!("/json?id={n}")))).collect();
/// let inputs = futures_util::stream::iter(specs);
/// let records: Vec<_> = fetcher.fetch_all(inputs).collect().await;
/// assert_eq!(records.len(), 20);
/// assert!(records.iter().all(|r| r.ok));
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Clone)]
pub struct Fetcher {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").field("config", &self.engine.config).finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A builder with the default [`Config`].
    pub fn builder() -> FetcherBuilder {
        FetcherBuilder::default()
    }

    /// A fetcher of `config`, already checked.
    fn from_checked(config: Config) -> Result<Fetcher, BuildError> {
        // One map of default headers, shared by the machine's requests and known to the
        // transport, which keeps them with `Host` added for the last origin.
        let defaults = Arc::new(config.headers.clone());
        let transport = transport::Transport::new(&config, defaults.clone())?;
        Ok(Fetcher { engine: Arc::new(Engine::with_defaults(config, transport, defaults)) })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.engine.config
    }

    /// Fetches one request; its record has `i = 0`.
    ///
    /// Takes anything that is an [`Input`]: a [`RequestSpec`], or a URL, whose record is an
    /// `invalid_request` failure when it does not parse (as in [`Fetcher::fetch_all`]).
    pub async fn fetch(&self, input: impl Into<Input>) -> Record {
        let input = input.into();
        if let Some(auth) = &self.engine.auth {
            auth.learn(&input);
        }
        self.engine.execute(0, input).await.record
    }

    /// Fetches every input of `inputs`, at most `concurrency` at a time, and yields one record per
    /// input as each completes (completion order; `record.i` is the input's position).
    ///
    /// Inputs are pulled only as fast as requests finish, so memory stays O(concurrency) however
    /// long the stream. Must be called within a tokio runtime. Dropping the returned stream stops
    /// pulling input; requests already started run to their end and their records are dropped.
    pub fn fetch_all<S>(&self, inputs: S) -> impl Stream<Item = Record> + Send + 'static
    where
        S: Stream + Send + 'static,
        S::Item: Into<Input> + Send + 'static,
    {
        self.fetch_indexed(
            inputs.zip(stream::iter(0u64..)).map(|(input, i)| (i, input)),
            RunOptions::default(),
        )
    }

    /// As [`Fetcher::fetch_all`], over an iterator: URLs (`&str`, `String`), [`RequestSpec`]s
    /// or [`Input`]s. A URL that does not parse becomes an `invalid_request` record.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use futures_util::StreamExt;
    ///
    /// let server = outofsync_server::Server::start()?;
    /// let urls: Vec<String> = (1..=3).map(|n| server.url(&format!("/json?id={n}"))).collect();
    /// let fetcher = outofsync::Fetcher::builder().build()?;
    /// let records: Vec<_> = fetcher.fetch_iter(urls).collect().await;
    /// assert!(records.len() == 3 && records.iter().all(|r| r.ok));
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
    /// ```
    pub fn fetch_iter<I>(&self, inputs: I) -> impl Stream<Item = Record> + Send + 'static
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Into<Input> + Send + 'static,
    {
        self.fetch_all(stream::iter(inputs))
    }

    /// Fetches inputs that are already numbered — `(i, input)`, `i` becoming `record.i` — in the
    /// order and under the [`Shutdown`] of `options`.
    ///
    /// The numbering is the caller's, so a resumed run keeps every `i` of the first run by leaving
    /// out the inputs already recorded. When the shutdown stops the input, no new input is read;
    /// when it cancels, requests in flight end without a record (the stream then ends; in input
    /// order it ends at the first request without one). Otherwise as [`Fetcher::fetch_all`].
    pub fn fetch_indexed<S, I>(
        &self,
        inputs: S,
        options: RunOptions,
    ) -> impl Stream<Item = Record> + Send + 'static
    where
        S: Stream<Item = (u64, I)> + Send + 'static,
        I: Into<Input> + Send + 'static,
    {
        let engine = self.engine.clone();
        // The credentials' host, when none is given, is the first request's: learnt here, where
        // inputs are read one by one in order, before any runs.
        let learner = engine.clone();
        let inputs = inputs.map(move |(i, input)| {
            let input: Input = input.into();
            if let Some(auth) = &learner.auth {
                auth.learn(&input);
            }
            (i, input)
        });
        match options.order {
            Order::Completion => {
                let slots = self.admission_slots();
                drive::completion(engine, inputs, slots, options.shutdown).left_stream()
            }
            Order::Input { window } => {
                drive::in_order(engine, inputs, window, options.shutdown).right_stream()
            }
        }
    }

    /// Shows the fetcher an input it may not fetch. Credentials with no host named go to the
    /// first request's host; a caller that leaves inputs out before fetching them (a resume)
    /// shows it each input first, so that the first is the input's, not the first one left.
    pub fn note_input(&self, input: &Input) {
        if let Some(auth) = &self.engine.auth {
            auth.learn(input);
        }
    }

    /// Requests admitted at once in completion order; also the default reorder window.
    pub fn admission_slots(&self) -> usize {
        self.engine.config.concurrency.max(1).saturating_mul(ADMISSION_FACTOR)
    }
}

/// GETs `url` and deserialises its JSON body: the note's `fetch_data()` in one line.
///
/// Uses default settings (retries and timeouts included) and a client built for this call;
/// for many requests, build one [`Fetcher`] and reuse it.
///
/// # Errors
/// The request failed (the error says why, with its [`ErrorKind`](crate::ErrorKind)), or the body is
/// not JSON that fits `T`.
pub async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, crate::record::RecordError> {
    use crate::record::{ErrorKind, RecordError};
    let spec = RequestSpec::get(url).map_err(|e| RecordError::new(ErrorKind::InvalidRequest, e.message))?;
    let fetcher = Fetcher::builder()
        .body(BodyMode::Json)
        .build()
        .map_err(|e| RecordError::new(ErrorKind::InvalidRequest, e.to_string()))?;
    let record = fetcher.fetch(spec).await;
    match record.error {
        Some(error) => Err(error),
        None => record.json(),
    }
}
