//! [`Client`]: a configured fetcher — one request at a time for `Session`, or whole runs.

use outofsync::Fetcher;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokio::runtime::Handle;

use crate::flow::Flow;
use crate::hub::{Hub, Outcome};
use crate::inputs::to_input;
use crate::options;
use crate::record::Record;

/// A fetcher and the runtime it runs on. Requests through one client share its connections and
/// limits (`concurrency`, `per_host`, `rate`, host cooldowns).
#[pyclass(frozen, module = "outofsync._outofsync")]
#[derive(Debug)]
pub struct Client {
    fetcher: Fetcher,
    runtime: Handle,
    pid: u32,
}

impl Client {
    fn check_pid(&self) -> PyResult<()> {
        if self.pid == std::process::id() { Ok(()) } else { Err(crate::runtime::forked("Session")) }
    }
}

#[pymethods]
impl Client {
    /// A client of `options` (the fetcher options: `concurrency`, `per_host`, `rate`…).
    #[new]
    #[pyo3(signature = (**options))]
    fn new(options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let fetcher = match options {
            Some(options) => options::fetcher(options, Fetcher::builder())?,
            None => Fetcher::builder()
                .build()
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?,
        };
        let runtime = crate::runtime::handle()?;
        // The transport's connections are made on the runtime: build nothing there yet.
        Ok(Client { fetcher, runtime, pid: std::process::id() })
    }

    /// Starts one request (a URL, a request dict or a `Request`); its `Record` comes back
    /// through `hub` under the returned token. Raises `TypeError` for anything else.
    fn fetch(&self, hub: &Hub, input: &Bound<'_, PyAny>) -> PyResult<u64> {
        self.check_pid()?;
        let input = to_input(input, 0)?;
        let fetcher = self.fetcher.clone();
        hub.spawn(&self.runtime, async move {
            let record = fetcher.fetch(input).await;
            Box::new(move |py: Python<'_>| Ok(Py::new(py, Record::new(record))?.into_any())) as Outcome
        })
    }

    /// A run of this client's fetcher with the run options (`ordered`, `output`, `resume`…);
    /// nothing starts until its first batch is asked for.
    #[pyo3(signature = (**options))]
    fn open(&self, py: Python<'_>, options: Option<&Bound<'_, PyDict>>) -> PyResult<Flow> {
        self.check_pid()?;
        let settings = match options {
            Some(options) => options::run(options)?,
            None => options::run(&PyDict::new(py))?,
        };
        Ok(Flow::new(self.fetcher.clone(), settings, self.runtime.clone()))
    }

    /// The configuration, as the core prints it.
    fn __repr__(&self) -> String {
        let c = self.fetcher.config();
        format!(
            "Client(concurrency={}, per_host={:?}, retries={})",
            c.concurrency, c.per_host, c.retry.retries
        )
    }
}
