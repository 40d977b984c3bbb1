//! outofsync fetches data from HTTP APIs asynchronously, fast, and without losing anything.
//!
//! Every request ends as exactly one [`Record`], success or failure — the
//! "promise" of an `async def` made literal.
//!
//! # Layout
//!
//! - [`request`]: what goes in — [`RequestSpec`], invalid input, and the readers of files and stdin.
//! - [`auth`]: credentials — bearer tokens, API keys, Basic, OAuth2 — and where they may go.
//! - [`engine`]: [`Fetcher`], which turns inputs into records under limits, retries and timeouts.
//! - [`record`]: [`Record`] and [`ErrorKind`], and the record's JSON line.
//! - [`output`]: the writer of JSON lines and the resume journal; [`stats`]: counts and the summary.
//! - [`pipeline`]: a whole run — input, engine, output — as `outofsync fetch` does it.
//!
//! The engine's request rules live in one place, [`engine::machine`]: a state machine without
//! I/O that the engine's async loop drives, and that any other client (the lab's blocking
//! threads) can drive the same way.
//!
//! # The workspace
//!
//! This crate is the core: no command line, progress bar, plotting or blocking client. Beside
//! it, `outofsync-server` is the built-in JSON API (the demo, the tests, the lab and the
//! benchmarks talk to it), `outofsync-lab` measures async against threads, and `outofsync-cli`
//! is the `outofsync` command, a thin crate over the three.
#![deny(missing_docs, missing_debug_implementations)]

pub mod auth;
pub mod engine;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod record;
pub mod request;
pub mod shard;
pub mod stats;

pub use engine::{BodyMode, BuildError, Config, Fetcher, FetcherBuilder, get_json};
pub use record::{ErrorKind, Payload, Record, RecordError};
pub use request::{Input, InvalidInput, ParseError, RequestSpec};
