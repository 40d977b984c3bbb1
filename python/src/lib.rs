//! `outofsync._outofsync`: the Rust half of the Python module `outofsync`.
//!
//! A thin front over the core library, with no request logic of its own: the engine
//! ([`outofsync::Fetcher`]), its limits, retries, cooldowns and jq filters, and the journal
//! ([`outofsync::output`]) are the command line's. What lives here is the bridge:
//!
//! - `runtime`: the tokio runtime the engine runs on — made on first use, shut down at
//!   interpreter exit, forgotten (never touched again) in the child of a `fork`.
//! - `hub`: how finished work reaches an asyncio event loop. Tokio threads never take the GIL:
//!   they queue results and write one byte to a pipe that the loop watches, and the loop's thread
//!   collects every queued result in one call.
//! - `options`: keyword arguments to a [`outofsync::FetcherBuilder`] and run options.
//! - `inputs`: URLs, request dicts and `Request` objects to [`outofsync::Input`]s, and the
//!   bounded feed that hands them to the engine.
//! - `flow`: one run — inputs in, records out in batches bounded by bytes, the journal written
//!   on the way.
//! - `record`: the `Record` and `Error` classes.
//! - `client`: `Client`, a configured fetcher: one request, a run, or a blocking run.
//!
//! The asyncio API itself (`stream`, `fetch_all`, `Session`, `fetch_batch`) is Python, in
//! `python/outofsync/__init__.py`, over these few classes.
#![deny(missing_docs)]

mod client;
mod flow;
mod hub;
mod inputs;
mod options;
mod record;
mod runtime;

use pyo3::prelude::*;

/// The module `outofsync._outofsync`.
#[pymodule]
fn _outofsync(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::Client>()?;
    m.add_class::<flow::Flow>()?;
    m.add_class::<hub::Hub>()?;
    m.add_class::<inputs::Request>()?;
    m.add_class::<record::Record>()?;
    m.add_class::<record::Error>()?;
    m.add_function(wrap_pyfunction!(runtime::shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(inputs::check_inputs, m)?)?;
    m.add("ERROR_KINDS", outofsync::ErrorKind::ALL.map(|kind| kind.as_str()).to_vec())?;
    m.add("FETCHER_OPTIONS", options::FETCHER_OPTIONS.to_vec())?;
    m.add("RUN_OPTIONS", options::RUN_OPTIONS.to_vec())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
