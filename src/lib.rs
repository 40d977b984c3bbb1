//! outofsync fetches data from HTTP APIs asynchronously, fast, and without losing anything.
//!
//! Every request ends as exactly one [`Record`], success or failure — the
//! "promise" of an `async def` made literal.
//!
//! # Layout
//!
//! - [`request`]: what goes in — [`RequestSpec`], invalid input, and the readers of files and stdin.
//! - [`engine`]: [`Fetcher`], which turns inputs into records under limits, retries and timeouts.
//! - [`record`]: [`Record`] and [`ErrorKind`], and the record's JSON line.
//! - [`output`]: the writer of JSON lines; [`stats`]: counts and the summary; [`progress`]: the bar.
//! - [`pipeline`]: a whole run — input, engine, output — as `outofsync fetch` does it.
//! - [`demo`]: the main job, end to end, on the built-in server.
//! - [`server`]: the built-in JSON API that the demo, the tests, the lab and the benchmarks talk to.
//! - [`lab`]: async against threads, measured: engines, workloads, metrics and the report.
#![deny(missing_docs)]

pub mod demo;
pub mod engine;
pub mod lab;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod record;
pub mod request;
pub mod server;
pub mod stats;

pub use engine::{BodyMode, BuildError, Config, Fetcher, FetcherBuilder, get_json};
pub use record::{ErrorKind, Payload, Record, RecordError};
pub use request::{Input, InvalidInput, RequestSpec};
